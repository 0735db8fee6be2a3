"""Block-layer fault scenarios (issue 18), registered into scenarios.py by `register(module)`.

The faults sit below the guest kernel, in QEMU, on the second disk /dev/vdc (the extra disk),
which the migration writes with `--flash-to /dev/vdc`: nothing of the old system uses that
disk, so a fault fires only on takeover's own writes.

- fault-eio-write-once: QEMU's `blkdebug` driver fails ONE write that covers sector 40960
  (20 MiB into the disk) with EIO: stage 2's first write attempt fails with the kernel's I/O
  error, the retry succeeds, the disk verifies and is configured.
- fault-eio-write-always: the same write fails every time: both attempts fail, the partition
  table is invalidated (first MiB zero, no partitions), the log lands on `--log-to`, reboot.
- fault-readback-mismatch: blkdebug cannot corrupt data, so the `fault-injection` build's
  fault point `readback` makes the first read-back of the image differ from what was written
  (one bit of the read-back hash flipped, as a corrupted read would): the attempt fails as a
  write failure ("differs from what was written"), the retry succeeds.
- disk-4kn-refused: /dev/vdc is a 4Kn disk (`virtio-blk-pci,logical_block_size=4096`): both
  `--dry-run --flash-to /dev/vdc` and `--write-only -f /dev/vdc` refuse it in stage 1 (exit 1,
  the message names the sector size) and the disk stays all zero.
- write-only-disk-in-use-refused: in the guest, a device-mapper volume is set up over
  /dev/vdc (`dmsetup create`, standing in for LVM or LUKS), then swap on /dev/vdc is turned
  on: `--write-only -f /dev/vdc` refuses both (exit 1), naming the volume and the swap; the
  image never lands on the disk.
- power-cut-mid-flash: /dev/vdc is throttled to 2 MB/s of writes; QEMU is killed (SIGKILL, a
  power cut) 1 s after stage 2's first progress line of the write (logged 5 s into it, about
  10 of the 64 MiB written; the rest takes about 27 s more at that rate). On the disk: no partition table (first MiB
  zero), part of the image after it. After a restart the guest's kernel finds no partition on
  /dev/vdc.
"""

import hashlib
import os
import shutil

# The power cut: 1 s after stage 2's first progress line of the write (every 5 s: about 10 of
# the 64 MiB written at 2 MB/s; the rest takes about 27 s more).
KILL_ON = "INFO  writing: "
SECTOR_FAULT = 40960  # 20 MiB: inside the image, away from the first and last MiB
EXTRA_MB = 256
ZERO_MIB = hashlib.sha256(bytes(1 << 20)).hexdigest()
# takeover's message for the failed write (musl's strerror for EIO is "I/O error").
EIO_MSG = f"writing image to /dev/vdc at byte {SECTOR_FAULT * 512}: I/O error"


def blkdebug_conf(path: str, once: bool) -> str:
    """A blkdebug rule file: EIO (5) on writes covering SECTOR_FAULT, once or always."""
    with open(path, "w") as f:
        f.write("[inject-error]\n"
                'event = "pwritev"\n'
                'iotype = "write"\n'
                'errno = "5"\n'
                f'sector = "{SECTOR_FAULT}"\n'
                f'once = "{"on" if once else "off"}"\n')
    return path


def blkdebug_args(conf: str) -> list:
    return ["-drive", "if=none,id=xd,format=raw,cache=unsafe,file.driver=blkdebug,"
            f"file.config={conf},file.image.filename={{extra}}",
            "-device", "virtio-blk-pci,drive=xd,addr=0x10"]


def register(m) -> None:
    check, read = m.check, m.read

    def out_dir(name):
        d = os.path.join(m.OUT, name)
        os.makedirs(d, exist_ok=True)
        return d

    def flash_vdc(ctx, name, extra_args, args="", **kw):
        img, man = m.image("mbr", 64)
        res = m.migrate(ctx, name, "systemd", f"-i /payload/image.img.gz --flash-to /dev/vdc {args}",
                        {"image.img.gz": img}, extra_disk_mb=EXTRA_MB, extra_disk_args=extra_args, **kw)
        return res, man

    def no_table(path: str) -> None:
        with m.inspect_disk.Disk(path) as d:
            check(d.region_digest(0, 1 << 20) == ZERO_MIB, "the first MiB of the target is not zero")
            check(not d.partitions(), f"the target still has partitions: {d.partitions()}")

    @m.scenario("fault-eio-write-once", needs="stage2")
    def eio_once(ctx):
        name = "fault-eio-write-once"
        conf = blkdebug_conf(os.path.join(out_dir(name), "blkdebug.conf"), once=True)
        res, man = flash_vdc(ctx, name, blkdebug_args(conf))
        m.vm_ok(res, "reboot")
        text = read(res["serial_log"], "")
        check(f"write attempt 1 failed: {EIO_MSG}" in text,
              "stage 2 did not report the injected I/O error of attempt 1")
        check("(attempt 2)" in text, "no second write attempt")
        check("stage 2 complete" in text, "stage 2 did not complete")
        m.assert_migrated(res, res["extra_disk"], man, "systemd", backup=False)
        return f"EIO at sector {SECTOR_FAULT} once: retry verified and configured; run {res['seconds']} s"

    @m.scenario("fault-eio-write-always", needs="stage2")
    def eio_always(ctx):
        name = "fault-eio-write-always"
        conf = blkdebug_conf(os.path.join(out_dir(name), "blkdebug.conf"), once=False)
        res, _ = flash_vdc(ctx, name, blkdebug_args(conf), "--log-to /dev/vdb1")
        m.vm_ok(res, "reboot")
        text = read(res["serial_log"], "")
        check("(attempt 2)" in text and text.count(EIO_MSG) >= 2,
              "both attempts must fail with the I/O error")
        check("invalidating the partition table" in text, "stage 2 did not invalidate the partition table")
        check("stage 2 complete" not in text and "stage 2 worker ended with status" in text,
              "the failure was not reported as a failure")
        no_table(res["extra_disk"])
        log = m.payload_log(res)
        check("invalidating the partition table" in log and EIO_MSG in log,
              "the log on --log-to lacks the failure")
        return f"EIO at sector {SECTOR_FAULT} always: 2 attempts failed, table invalidated, " \
            f"log on /dev/vdb1; run {res['seconds']} s"

    @m.scenario("fault-readback-mismatch", needs="stage2+fault-injection")
    def readback(ctx):
        res, man = m.fault_migration(ctx, "fault-readback-mismatch", "readback")
        m.vm_ok(res, "reboot")
        text = read(res["serial_log"], "")
        check("differs from what was written" in text, "the corrupted read-back was not detected")
        check("write attempt 1 failed" in text and "(attempt 2)" in text,
              "the mismatch was not handled as a failed write (retry)")
        m.assert_migrated(res, res["root_disk"], man, "systemd", backup=False)
        return f"read-back mismatch detected, retry verified; run {res['seconds']} s"

    @m.scenario("disk-4kn-refused")
    def disk_4kn(ctx):
        name = "disk-4kn-refused"
        img, _ = m.image("mbr", 64)
        p = m.payload(name, ctx.binary, """
cat /sys/block/vdc/queue/logical_block_size >"$OUT/lbs"
./takeover --dry-run --no-ack -i /payload/image.img.gz -c /payload/config.json \\
    -w /payload/out/work --flash-to /dev/vdc --report /payload/out/report.json 2>&1 | tee "$OUT/dry-run.log"
echo "${PIPESTATUS[0]}" >"$OUT/dry-run.rc"
./takeover --write-only -i /payload/image.img.gz -c /payload/config.json -f /dev/vdc \\
    -w /payload/out/wo 2>&1 | tee "$OUT/write-only.log"
echo "${PIPESTATUS[0]}" >"$OUT/write-only.rc"
""", {"image.img.gz": img})
        for d in ("work", "wo"):
            os.makedirs(os.path.join(p, "out", d), exist_ok=True)
        args = ["-drive", "if=none,id=xd,format=raw,cache=unsafe,file={extra}",
                "-device", "virtio-blk-pci,drive=xd,addr=0x10,logical_block_size=4096,physical_block_size=4096"]
        res = m.vm.run_vm("systemd", p, os.path.join(m.OUT, name), timeout=ctx.timeout, stream=ctx.stream,
                          extra_disk_mb=EXTRA_MB, extra_disk_args=args)
        m.vm_ok(res)
        o = res["out"]
        check(read(os.path.join(o, "lbs"), "").strip() == "4096", "the guest does not see a 4Kn /dev/vdc")
        for what in ("dry-run", "write-only"):
            rc = read(os.path.join(o, f"{what}.rc"), "").strip()
            log = read(os.path.join(o, f"{what}.log"), "")
            check(rc == "1", f"--{what} onto the 4Kn disk exited {rc or 'not at all'} (expected 1)")
            check("4096-byte logical sectors" in log, f"--{what} did not name the sector size: {log[-300:]!r}")
        with open(res["extra_disk"], "rb") as f:
            while True:
                b = f.read(8 << 20)
                if not b:
                    break
                check(not any(b), "the 4Kn disk was written")
        return f"--dry-run and --write-only refuse the 4Kn /dev/vdc (exit 1), disk untouched; run {res['seconds']} s"

    @m.scenario("power-cut-mid-flash", needs="stage2")
    def power_cut(ctx):
        name = "power-cut-mid-flash"
        args = ["-drive", "if=none,id=xd,format=raw,cache=unsafe,file={extra},throttling.bps-write=2097152",
                "-device", "virtio-blk-pci,drive=xd,addr=0x10"]
        res, _ = flash_vdc(ctx, name, args, kill_on=KILL_ON, kill_delay=1)
        check(res["end"] == "killed", f"QEMU was not killed mid-flash (end {res['end']}); see {res['serial_log']}")
        text = read(res["serial_log"], "")
        # The restart below writes its own serial.log into the same run directory.
        shutil.copyfile(res["serial_log"], res["serial_log"] + ".power-cut")
        check("wrote and verified" not in text, "the write finished before the power cut")
        progress = [ln.split("  ", 1)[-1].strip() for ln in text.splitlines() if "INFO  written" in ln]
        no_table(res["extra_disk"])
        with open(res["extra_disk"], "rb") as f:
            f.seek(1 << 20)
            written = any(f.read(63 << 20))
        check(written, "nothing of the image was written after the first MiB before the cut")
        # Restart: the same disks boot again; the kernel reads /dev/vdc's (absent) table.
        p = m.payload(name + "-restart", ctx.binary, """
cat /proc/partitions >"$OUT/partitions"
""")
        res2 = m.vm.run_vm("systemd", p, os.path.join(m.OUT, name), timeout=ctx.timeout, stream=ctx.stream,
                           reuse_disk=True, extra_disk_mb=EXTRA_MB)
        m.vm_ok(res2)
        parts = read(os.path.join(res2["out"], "partitions"), "")
        check(" vdc\n" in parts + "\n", f"/dev/vdc missing after the restart: {parts!r}")
        check("vdc1" not in parts, f"a partition of /dev/vdc appeared after the restart: {parts!r}")
        last = f" (last progress: {progress[-1]})" if progress else ""
        return f"killed {res['killed_at']:.0f} s into the run{last}: no partition table, image data after the " \
            f"first MiB; after the restart no partition on /dev/vdc; runs {res['seconds']} s + {res2['seconds']} s"

    @m.scenario("write-only-disk-in-use-refused")
    def disk_in_use(ctx):
        name = "write-only-disk-in-use-refused"
        img, _ = m.image("mbr", 64)
        p = m.payload(name, ctx.binary, """
wo() {
    ./takeover --write-only -i /payload/image.img.gz -c /payload/config.json -f /dev/vdc \\
        -w /payload/out/wo 2>&1 | tee "$OUT/$1.log"
    echo "${PIPESTATUS[0]}" >"$OUT/$1.rc"
}
dmsetup create takeover-held --table "0 $(cat /sys/block/vdc/size) linear /dev/vdc 0"
echo $? >"$OUT/dmsetup.rc"
wo dm
dmsetup remove takeover-held
mkswap /dev/vdc >/dev/null && swapon /dev/vdc
echo $? >"$OUT/swapon.rc"
cat /proc/swaps >"$OUT/swaps"
wo swap
swapoff /dev/vdc
""", {"image.img.gz": img})
        os.makedirs(os.path.join(p, "out", "wo"), exist_ok=True)
        res = m.vm.run_vm("systemd", p, os.path.join(m.OUT, name), timeout=ctx.timeout, stream=ctx.stream,
                          extra_disk_mb=EXTRA_MB)
        m.vm_ok(res)
        o = res["out"]
        check(read(os.path.join(o, "dmsetup.rc"), "").strip() == "0", "dmsetup create failed in the guest")
        check(read(os.path.join(o, "swapon.rc"), "").strip() == "0", "swapon /dev/vdc failed in the guest")
        for what, want in (("dm", "(takeover-held) over vdc"), ("swap", "active swap /dev/vdc")):
            rc = read(os.path.join(o, f"{what}.rc"), "").strip()
            log = read(os.path.join(o, f"{what}.log"), "")
            check(rc == "1", f"--write-only onto /dev/vdc held by {what} exited {rc or 'not at all'} (expected 1)")
            check("is in use" in log and want in log, f"--write-only did not name the holder {want!r}: {log[-300:]!r}")
        with open(res["extra_disk"], "rb") as f:
            head = f.read(1 << 20)
            rest = f.read(64 << 20)
        check(head[510:512] != b"\x55\xaa" and not any(rest), "the image was written to the disk in use")
        return f"--write-only refuses /dev/vdc under a dm volume and as active swap (exit 1, holder named); run {res['seconds']} s"
