"""Scenarios of the image's and the backup's trust (issue 18), registered into scenarios.py by
`register(module)`.

image-changed-after-verify: the fault-injection build with TAKEOVER_FAULT=image-changed-after-verify
flips one byte of the image file after stage 1 verified it and before it is copied into the RAM
root. The copy is hashed as it is made and compared with the verified SHA-256: stage 1 must
refuse (exit 1) before the hand-over, undo the RAM root, and leave the old OS and its disk as
they were.

backup-unmountable-refused: a migration with --backup-cfg of an image whose resin-data
superblock carries an incompat feature no kernel knows (bit 0x80000000). Stage 2 would write the
backup into that filesystem through the kernel's ext4, which refuses to mount it: stage 1 must
refuse (exit 1) naming the feature, before anything changes.
"""

import gzip
import os

UNKNOWN_INCOMPAT = 0x80000000


def resin_data_unmountable(m) -> bytes:
    """The gzip of the test image with an unknown incompat feature set in resin-data's
    superblock (byte 1024 + 96 of the partition). The superblock checksum is left stale: the
    guest kernel refuses the mount either way (with the release binary of main, stage 2 failed
    there with EBADMSG after the disk was written, and the backup was lost); stage 1 reads
    the feature flags, not the checksum."""
    img, man = m.image("mbr", 64)
    raw = bytearray(gzip.decompress(open(img, "rb").read()))
    part = next(p for p in man["partitions"] if p["name"] == "resin-data")
    at = part["start"] + 1024 + 96
    cur = int.from_bytes(raw[at:at + 4], "little")
    raw[at:at + 4] = (cur | UNKNOWN_INCOMPAT).to_bytes(4, "little")
    return gzip.compress(bytes(raw), compresslevel=1, mtime=0)


def register(m) -> None:
    check = m.check

    def refused_intact(res, name):
        """Stage 1 refused with exit 1, the guest powered off by itself, the disk is as built."""
        m.vm_ok(res)  # stage 1 fails, the payload hook powers off
        rc = (m.read(os.path.join(res["out"], "takeover.rc"), "") or "").strip()
        check(rc == "1", f"{name}: stage 1 exit code {rc!r}, expected 1")
        text = m.read(res["serial_log"], "") or ""
        check("Kernel panic" not in text, "kernel panic in the serial log")
        check("takeover initiated" not in text, "the hand-over went ahead")
        m.root_unchanged_on_disk(res, "systemd")
        return (m.read(os.path.join(res["out"], "stage1.log"), "") or "") + text

    @m.scenario("image-changed-after-verify", needs="stage2+fault-injection")
    def image_changed(ctx):
        res, _ = m.fault_migration(ctx, "image-changed-after-verify", "image-changed-after-verify")
        log = refused_intact(res, "image-changed-after-verify")
        check("flipped the byte" in log, "the fault point did not change the image")
        check("the image changed after it was verified" in log,
              "stage 1 did not report the changed image")
        check("nothing was changed on this system" in log, "the refusal does not say nothing changed")
        return f"refused before the hand-over, disk intact; run {res['seconds']} s"

    @m.scenario("backup-unmountable-refused", needs="stage2")
    def backup_unmountable(ctx):
        res = m.migrate(ctx, "backup-unmountable-refused", "systemd",
                        "-i /payload/image.img.gz --backup-cfg /srv/app/backup.yml",
                        {"image.img.gz": resin_data_unmountable(m)})
        log = refused_intact(res, "backup-unmountable-refused")
        check("cannot mount it read-write" in log and "unknown incompat feature 0x80000000" in log,
              "stage 1 did not name resin-data's unknown feature")
        return f"refused in stage 1 naming the feature, disk intact; run {res['seconds']} s"
