"""LVM root scenario (issue 18), registered into scenarios.py by `register(module)`.

- lvm-root-migrate: the "lvm" guest (tests/vm/lvm-guest.sh: the systemd guest with its root
  filesystem on the logical volume takeover/root over /dev/vda1, root=/dev/mapper/takeover-root)
  boots. (a) `--write-only -f /dev/vda` from inside is refused (exit 1) naming the volume over
  vda1, and the first 65 MiB of /dev/vda read the same before and after. (b) A real migration
  of /dev/vda in the same boot (`--flash-to /dev/vda`: with / on a volume, takeover will not
  guess the disk under it and says which disk to name): stage 2 unmounts the volume's filesystem (the volume itself
  stays active; nothing writes through it once unmounted), writes the image and reboots. The
  disk is then inspected on the host like every migration (layout, config.json, backup, fsck).
"""

import os
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
NAME = "lvm-root-migrate"
# The guest's volume as the kernel names it: device-mapper name takeover-root over vda1.
HOLDER = "(takeover-root) over vda1"

# Before the migration: what the guest booted from, then --write-only onto its own disk.
WO_RUN = """
lsblk -rn -o NAME,TYPE,MOUNTPOINT >"$OUT/lsblk"
findmnt -rn -o SOURCE / >"$OUT/rootsrc"
head -c $((65 << 20)) /dev/vda | sha256sum >"$OUT/vda.before"
./takeover --write-only -i /payload/image.img.gz -c /payload/config.json -f /dev/vda \\
    -w /payload/out/wo 2>&1 | tee "$OUT/wo.log"
echo "${PIPESTATUS[0]}" >"$OUT/wo.rc"
head -c $((65 << 20)) /dev/vda | sha256sum >"$OUT/vda.after"
"""


def register(m) -> None:
    check, read = m.check, m.read

    def build_guest():
        os.makedirs(os.path.join(m.OUT, NAME), exist_ok=True)
        log = os.path.join(m.OUT, NAME, "lvm-guest.log")
        with open(log, "ab") as f:
            rc = subprocess.run([os.path.join(HERE, "lvm-guest.sh")], stdout=f,
                                stderr=subprocess.STDOUT).returncode
        if rc != 0:
            raise m.Failed(f"building the lvm guest failed (see {log})")

    @m.scenario(NAME, needs="stage2")
    def lvm_root_migrate(ctx):
        build_guest()
        img, man = m.image("mbr", 64)
        # root on a volume: takeover will not guess the disk under it, --flash-to names it
        args = "-i /payload/image.img.gz --flash-to /dev/vda --backup-cfg /srv/app/backup.yml"
        run_sh = WO_RUN + m.MIGRATE_RUN.replace("{args}", args).replace("{env}", "")
        p = m.payload(NAME, ctx.binary, run_sh, {"image.img.gz": img})
        for d in ("wo", "work"):
            os.makedirs(os.path.join(p, "out", d), exist_ok=True)
        res = m.vm.run_vm("lvm", p, os.path.join(m.OUT, NAME), timeout=ctx.timeout, stream=ctx.stream,
                          mock_cmd=m.mock_cmd())
        o = res["out"]
        root = read(os.path.join(o, "rootsrc"), "").strip()
        check(root == "/dev/mapper/takeover-root", f"the guest's root is {root or 'unknown'!r}, not the LV")
        check(" lvm " in read(os.path.join(o, "lsblk"), ""), "lsblk shows no LVM volume in the guest")
        # (a) --write-only onto the disk that holds the running root volume
        rc = read(os.path.join(o, "wo.rc"), "").strip()
        log = read(os.path.join(o, "wo.log"), "")
        check(rc == "1", f"--write-only onto /dev/vda exited {rc or 'not at all'} (expected 1)")
        check("is in use" in log and HOLDER in log, f"--write-only did not name the holder {HOLDER!r}: {log[-300:]!r}")
        before = read(os.path.join(o, "vda.before"), "").split()
        check(before and before == read(os.path.join(o, "vda.after"), "").split(),
              "--write-only changed /dev/vda")
        # (b) the migration of the same disk
        m.vm_ok(res, "reboot")
        check(m.stage1_rc(res) == "0", "stage 1 did not exit 0")
        m.assert_migrated(res, res["root_disk"], man, "systemd")
        sec = m.assert_no_secrets(res, res["root_disk"])
        held = next((ln.strip() for ln in log.splitlines() if HOLDER in ln), "")
        return (f"--write-only refused: {held[:120]}; run {res['seconds']} s; "
                f"{m.serial_evidence(res)}; {sec}")
