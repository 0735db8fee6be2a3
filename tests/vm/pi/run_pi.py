#!/usr/bin/python3
"""Boot an emulated Raspberry Pi guest (tests/vm/build-pi-guest.sh) with a payload, capture the
serial console, end on the guest's poweroff/reboot or a timeout.

    tests/vm/pi/run_pi.py --board pi3|pi2 --payload DIR --out RUNDIR [--timeout 600] [--stream]
                          [--disk SD.IMG] [--append ARGS]

The board has one disk, its SD card: RUNDIR/sd.img, a sparse copy of the cached card (or --disk,
an already used card, e.g. to see whether the old OS boots again). DIR is written as an ext4
file system labelled PAYLOAD into the card's third partition (mmcblk0p3); the guest's hook
mounts it on /payload and runs run.sh, like the x86 guests (tests/vm/run.py). The partition
lies beyond the 64 MiB test images, so /payload/out/ survives a migration and is copied to
RUNDIR/out/ afterwards.

Without bcm2835_wdt (see build-pi-guest.sh) the kernel cannot reset the emulated board: a
reboot prints "reboot: Restarting system" (a watchdog reset "Reboot failed -- System halted"),
a poweroff "reboot: Power down", and the CPU halts. The runner ends QEMU on those lines.
result.json has the keys of run.py's (end, payload_exit, seconds, boot_to_payload_seconds,
root_disk, serial_log, out, ...) plus board and machine.
"""
import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(HERE))
import run as vm  # noqa: E402

PI_CACHE = os.path.join(vm.CACHE, "pi")
MiB = 1 << 20
# Serial lines after which the emulated board does nothing more (no restart handler).
END_LINES = (b"reboot: Restarting system", b"reboot: Power down", b"reboot: System halted",
             b"Reboot failed -- System halted", b"end Kernel panic")


def guest_dir(board: str) -> str:
    return os.path.join(PI_CACHE, f"guest-{board}")


def guest_info(board: str) -> dict:
    gd = guest_dir(board)
    for f in ("sd.img", "kernel", "board.dtb", "initrd.img", "cmdline", "info.json"):
        if not os.path.exists(os.path.join(gd, f)):
            raise RuntimeError(f"Pi guest '{board}' is not built ({gd}/{f} missing): "
                               f"run tests/vm/build-pi-guest.sh {board}")
    return json.load(open(os.path.join(gd, "info.json")))


def write_payload(src: str, sd: str, info: dict, stage: str) -> None:
    """src's files plus an empty out/ as ext4 (label PAYLOAD) into the card's third partition."""
    shutil.rmtree(stage, ignore_errors=True)
    shutil.copytree(src, stage, symlinks=True)
    os.makedirs(os.path.join(stage, "out"), exist_ok=True)
    size = info["payload_mib"] * MiB
    if vm.dir_bytes(stage) > size * 3 // 4:
        raise RuntimeError(f"payload {src} does not fit the {info['payload_mib']} MiB partition")
    part = stage + ".img"
    if os.path.exists(part):
        os.unlink(part)
    with open(part, "wb") as f:
        f.truncate(size)
    vm.sh("mkfs.ext4", "-q", "-F", "-L", "PAYLOAD", "-E", "root_owner=0:0", "-d", stage, part,
          stdout=subprocess.DEVNULL)
    vm.sh("dd", f"if={part}", f"of={sd}", "bs=1M", f"seek={info['payload_offset'] // MiB}",
          "conv=notrunc,sparse", "status=none")
    os.unlink(part)
    shutil.rmtree(stage)


class Serial(vm.Serial):
    """run.py's serial reader that also notes when the board has stopped for good."""

    def __init__(self, *a):
        super().__init__(*a)
        self.ended_at = None

    def run(self) -> None:
        import threading

        def watch():
            while self.is_alive() and self.ended_at is None:
                if any(k in self.tail for k in END_LINES):
                    self.ended_at = time.time()
                time.sleep(0.2)
        threading.Thread(target=watch, daemon=True).start()
        super().run()


def run_pi(board: str, payload: str, out: str, timeout: float = 600, stream: bool = False,
           disk: str = "", append: str = "") -> dict:
    info = guest_info(board)
    gd = guest_dir(board)
    os.makedirs(out, exist_ok=True)
    out = os.path.abspath(out)
    sd = os.path.abspath(disk) if disk else os.path.join(out, "sd.img")
    if not disk:
        if os.path.exists(sd):
            os.unlink(sd)
        vm.sh("cp", "--sparse=always", os.path.join(gd, "sd.img"), sd)
    elif not os.path.exists(sd):
        raise RuntimeError(f"SD card {sd} does not exist")
    if payload:
        write_payload(payload, sd, info, os.path.join(out, "payload.d"))
    cmdline = open(os.path.join(gd, "cmdline")).read().strip() + (" " + append if append else "")
    q = [info["qemu"], "-M", info["machine"], "-display", "none", "-monitor", "none",
         "-no-reboot", "-accel", "tcg,thread=multi",
         "-kernel", os.path.join(gd, "kernel"), "-dtb", os.path.join(gd, "board.dtb"),
         "-initrd", os.path.join(gd, "initrd.img"), "-append", cmdline,
         "-drive", f"file={sd},if=sd,format=raw,cache=unsafe",
         "-chardev", "stdio,id=s0,signal=off", "-serial", "chardev:s0"]
    with open(os.path.join(out, "qemu-cmdline.txt"), "w") as f:
        f.write(shlex.join(q) + "\n")
    vm.log(f"booting Pi guest {board} ({info['machine']}, TCG), serial log {out}/serial.log")
    t0 = time.time()
    proc = subprocess.Popen(q, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=open(os.path.join(out, "qemu-stderr.txt"), "wb"))
    serial = Serial(proc.stdout, os.path.join(out, "serial.log"), stream, t0)
    serial.start()
    timed_out, rc = False, None
    try:
        while rc is None:
            rc = proc.poll()
            if rc is not None:
                break
            if serial.ended_at and time.time() - serial.ended_at > 1.5:
                proc.terminate()
                rc = proc.wait(timeout=15)
                break
            if time.time() - t0 > timeout:
                timed_out = True
                vm.log(f"timeout after {timeout} s: stopping QEMU")
                proc.terminate()
                rc = proc.wait(timeout=15)
                break
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    serial.join(timeout=10)
    seconds = (serial.ended_at or time.time()) - t0
    text = open(os.path.join(out, "serial.log"), "rb").read().decode("utf-8", "replace")
    exits = re.findall(r"^PAYLOAD-EXIT: *(-?\d+)[ \t\r]*$", text, re.M)
    payload_exit = int(exits[-1]) if exits else None
    end = vm.classify_end(text, timed_out, 0 if serial.ended_at else rc)
    if not timed_out and "Reboot failed -- System halted" in text:
        end = "reboot"  # a watchdog reset (emergency restart) on a board without a restart handler
    shutil.rmtree(os.path.join(out, "out"), ignore_errors=True)
    subprocess.run(["debugfs", "-R", f"rdump /out {out}", f"{sd}?offset={info['payload_offset']}"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.makedirs(os.path.join(out, "out"), exist_ok=True)
    hook = serial.marks.get(b"PAYLOAD-HOOK: start")
    res = {
        "guest": board, "board": board, "machine": info["machine"], "accel": "tcg",
        "end": end, "qemu_status": rc, "payload_exit": payload_exit, "seconds": round(seconds, 1),
        "boot_to_payload_seconds": round(hook, 1) if hook is not None else None,
        "root_disk": sd, "payload_disk": None, "payload_offset": info["payload_offset"],
        "serial_log": os.path.join(out, "serial.log"), "out": os.path.join(out, "out"),
        "api_requests": None,
    }
    with open(os.path.join(out, "result.json"), "w") as f:
        json.dump(res, f, indent=1)
    vm.log(f"Pi guest ended: {end} after {res['seconds']} s (payload exit {payload_exit}, "
           f"payload started at {res['boot_to_payload_seconds']} s)")
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--board", choices=["pi3", "pi2"], default="pi3")
    ap.add_argument("--payload", help="directory written to the PAYLOAD partition (must hold run.sh)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--stream", action="store_true", help="echo the serial console")
    ap.add_argument("--disk", default="", help="boot this SD card (e.g. another run's sd.img)")
    ap.add_argument("--append", default="", help="extra kernel command line")
    a = ap.parse_args()
    try:
        res = run_pi(a.board, a.payload, a.out, a.timeout, a.stream, a.disk, a.append)
    except (RuntimeError, subprocess.CalledProcessError, OSError) as e:
        vm.log(f"error: {e}")
        return 1
    print(json.dumps(res))
    return 0 if res["end"] in ("poweroff", "reboot") else 1


if __name__ == "__main__":
    sys.exit(main())
