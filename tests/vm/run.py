#!/usr/bin/python3
"""Boot a clean overlay of a cached test guest with a payload disk, capture the serial console,
end on guest poweroff/reboot (QEMU runs with -no-reboot) or timeout, and leave the disks.

    tests/vm/run.py --guest systemd --payload DIR --out RUNDIR [--timeout 300] [--stream]
                    [--mock-cmd CMD] [--efi] [--extra-disk MIB] [--payload-fs ext4|vfat]
                    [--reuse-disk] [--accel auto|tcg|kvm]

DIR is copied onto a second virtio disk (MBR, one partition labelled PAYLOAD, /dev/vdb1 in the
guest); the guest's boot hook mounts it on /payload and runs `bash run.sh` there, with its output
on the serial console, then powers off (unless run.sh exits 99 or creates
/run/payload-keep-running). Whatever run.sh leaves in /payload/out/ is copied to RUNDIR/out/.

RUNDIR afterwards: root.qcow2 (overlay over the cached base; the guest's disk), payload.img,
extra.img (with --extra-disk, /dev/vdc in the guest), serial.log, api-requests.jsonl (with a mock),
out/, result.json = {end: poweroff|reboot|panic|timeout|qemu-error, payload_exit, seconds,
boot_to_payload_seconds, ...}.

--mock-cmd: a command line started on the host before the guest, with {port} and {log}
replaced (a free loopback port and RUNDIR/api-requests.jsonl). The guest reaches it only as
http://10.0.2.100 through QEMU user-mode networking with restrict=on and one guestfwd rule.
"""
import argparse
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CACHE = os.environ.get("VM_CACHE", os.path.join(HERE, "cache"))
RELAY = os.path.join(HERE, "relay.py")
OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"
MiB = 1 << 20
PAYLOAD_OFFSET = MiB


def log(msg: str) -> None:
    print(f"vm: {msg}", file=sys.stderr, flush=True)


def sh(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), check=True, **kw)


def guest_dir(flavour: str) -> str:
    return os.path.join(CACHE, f"guest-{flavour}")


def kvm_usable() -> bool:
    """KVM only when /dev/kvm opens AND the CPU advertises vmx/svm. On this machine kind /dev/kvm
    exists but a guest hangs under it (nested host without virtualisation extensions)."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
        os.close(fd)
    except OSError:
        return False
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return " vmx" in flags or " svm" in flags


def dir_bytes(path: str) -> int:
    total = 0
    for dp, _, fns in os.walk(path):
        for fn in fns:
            p = os.path.join(dp, fn)
            if not os.path.islink(p):
                total += os.path.getsize(p)
    return total


def make_payload_disk(src: str, img: str, fs: str) -> None:
    """MBR disk with one partition at 1 MiB holding a filesystem labelled PAYLOAD with src's files
    (plus an empty out/ directory). No loop device: the filesystem is built in a file and copied in."""
    stage = img + ".d"
    shutil.rmtree(stage, ignore_errors=True)
    shutil.copytree(src, stage, symlinks=True)
    os.makedirs(os.path.join(stage, "out"), exist_ok=True)
    part_mb = max(64, (dir_bytes(stage) * 3 // 2) // MiB + 64)
    part = img + ".part"
    for p in (img, part):
        if os.path.exists(p):
            os.unlink(p)
    with open(part, "wb") as f:
        f.truncate(part_mb * MiB)
    if fs == "ext4":
        sh("mkfs.ext4", "-q", "-F", "-L", "PAYLOAD", "-E", "root_owner=0:0", "-d", stage, part,
           stdout=subprocess.DEVNULL)
        ptype = "83"
    else:
        sh("mkfs.vfat", "-F", "32", "-n", "PAYLOAD", part, stdout=subprocess.DEVNULL)
        entries = [os.path.join(stage, e) for e in sorted(os.listdir(stage))]
        sh("mcopy", "-s", "-p", "-i", part, *entries, "::/")
        ptype = "c"
    with open(img, "wb") as f:
        f.truncate(part_mb * MiB + PAYLOAD_OFFSET)
    sh("sfdisk", "-q", "--no-reread", "--no-tell-kernel", img,
       input=f"label: dos\nunit: sectors\nstart=2048, type={ptype}\n", text=True,
       stdout=subprocess.DEVNULL)
    sh("dd", f"if={part}", f"of={img}", "bs=1M", "seek=1", "conv=notrunc,sparse", "status=none")
    os.unlink(part)
    shutil.rmtree(stage)


def extract_out(img: str, fs: str, dest: str) -> None:
    """Copy /out of the payload partition to dest/out (nothing mounted)."""
    shutil.rmtree(os.path.join(dest, "out"), ignore_errors=True)
    if fs == "ext4":
        subprocess.run(["debugfs", "-R", f"rdump /out {dest}", f"{img}?offset={PAYLOAD_OFFSET}"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    else:
        subprocess.run(["mcopy", "-s", "-n", "-i", f"{img}@@{PAYLOAD_OFFSET}", "::/out", dest],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.makedirs(os.path.join(dest, "out"), exist_ok=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 15) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"mock exited early with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"mock did not listen on 127.0.0.1:{port} within {timeout} s")


def default_mock_cmd(extra: str = "") -> str:
    """The mock API (tests/mock-api/mock_api.py) when it is in the tree, else the /ping-only
    stub; `extra` are further arguments for the real mock (device types, images, faults)."""
    env = os.environ.get("VM_MOCK_CMD")
    if env:
        return env
    real = os.path.join(ROOT, "tests", "mock-api", "mock_api.py")
    if os.path.exists(real):
        return f"/usr/bin/python3 {real} --port {{port}} --record {{log}} --max-seconds 1800 {extra}"
    return f"/usr/bin/python3 {os.path.join(HERE, 'stub_api.py')} --port {{port}} --record {{log}}"


class Serial(threading.Thread):
    """Reads QEMU's serial output (stdout pipe) into serial.log, optionally echoing it."""

    def __init__(self, pipe, path: str, stream: bool, t0: float):
        super().__init__(daemon=True)
        self.pipe, self.path, self.stream, self.t0 = pipe, path, stream, t0
        self.marks: dict = {}
        self.tail = b""
        self.kill = None  # (text, delay, process): run_vm's kill_on

    def run(self) -> None:
        with open(self.path, "wb") as f:
            while True:
                chunk = self.pipe.read1(65536) if hasattr(self.pipe, "read1") else self.pipe.read(4096)
                if not chunk:
                    break
                f.write(chunk)
                f.flush()
                if self.stream:
                    sys.stdout.buffer.write(chunk)
                    sys.stdout.buffer.flush()
                self.tail = (self.tail + chunk)[-4096:]
                for key in (b"PAYLOAD-HOOK: start", b"PAYLOAD-EXIT:"):
                    if key in self.tail and key not in self.marks:
                        self.marks[key] = time.time() - self.t0
                if self.kill and self.kill[0] in self.tail and "killed" not in self.marks:
                    self.marks["killed"] = time.time() - self.t0
                    key, delay, proc = self.kill
                    threading.Timer(delay, proc.kill).start()


def classify_end(text: str, timed_out: bool, rc) -> str:
    if timed_out:
        return "timeout"
    if "Kernel panic" in text:
        return "panic"
    if "reboot: Power down" in text or "reboot: System halted" in text:
        return "poweroff"
    if "reboot: Restarting system" in text:
        return "reboot"
    return "qemu-error" if rc else "reboot"  # -no-reboot exits 0 on reset without a message


def run_vm(guest: str, payload: str, out: str, timeout: float = 300, stream: bool = False,
           mock_cmd=None, efi: bool = False, extra_disk_mb: int = 0, payload_fs: str = "ext4",
           reuse_disk: bool = False, accel: str = "", mem_mb: int = 1024,
           append: str = "", disk: str = "", hostfwd=(), mock_port: int = 0,
           extra_disk_args=None, kill_on: str = "", kill_delay: float = 0) -> dict:
    """Boots `guest`; `disk` boots that (already used) root disk instead of a fresh overlay,
    e.g. to see whether the old OS comes back after a run. `hostfwd`: (host port, guest port)
    pairs forwarded from 127.0.0.1 (e.g. SSH); `mock_port`: a mock API already listening on that
    loopback port (shared by several guests) instead of starting `mock_cmd`.
    `extra_disk_args`: QEMU arguments for the extra disk instead of a plain virtio drive
    ("{extra}" is its file), e.g. a blkdebug drive or a 4Kn device. `kill_on`: SIGKILL QEMU
    `kill_delay` seconds after this text appears on the serial console (a power cut); the
    result's `end` is then "killed"."""
    gd = guest_dir(guest)
    base = os.path.join(gd, "base.qcow2")
    for f in ("base.qcow2", "vmlinuz", "initrd.img", "cmdline"):
        if not os.path.exists(os.path.join(gd, f)):
            raise RuntimeError(f"guest '{guest}' is not built ({gd}/{f} missing): "
                               f"run tests/vm/build-guest.sh {guest} (or make vm-guests)")
    os.makedirs(out, exist_ok=True)
    out = os.path.abspath(out)
    root = os.path.abspath(disk) if disk else os.path.join(out, "root.qcow2")
    if disk:
        if not os.path.exists(root):
            raise RuntimeError(f"root disk {root} does not exist")
    elif not (reuse_disk and os.path.exists(root)):
        if os.path.exists(root):
            os.unlink(root)
        sh("qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", base, root)
    pimg = os.path.join(out, "payload.img")
    if payload:
        make_payload_disk(payload, pimg, payload_fs)
    extra = os.path.join(out, "extra.img")
    if extra_disk_mb and not (reuse_disk and os.path.exists(extra)):
        with open(extra, "wb") as f:
            f.truncate(extra_disk_mb * MiB)

    accel = accel or os.environ.get("VM_ACCEL", "auto")
    if accel == "auto":
        accel = "kvm" if kvm_usable() else "tcg"
    cmdline = open(os.path.join(gd, "cmdline")).read().strip()
    if append:
        cmdline += " " + append
    q = ["qemu-system-x86_64", "-nodefaults", "-no-user-config", "-display", "none",
         "-no-reboot", "-m", str(mem_mb), "-smp", "2"]
    q += ["-accel", "kvm", "-cpu", "host"] if accel == "kvm" else \
         ["-accel", "tcg,thread=multi", "-cpu", "max"]
    if efi:
        vars_copy = os.path.join(out, "OVMF_VARS.fd")
        if not (reuse_disk and os.path.exists(vars_copy)):
            shutil.copyfile(OVMF_VARS, vars_copy)
        q += ["-machine", "q35",
              "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
              "-drive", f"if=pflash,format=raw,unit=1,file={vars_copy}"]
    else:
        q += ["-machine", "pc"]
    q += ["-kernel", os.path.join(gd, "vmlinuz"), "-initrd", os.path.join(gd, "initrd.img"),
          "-append", cmdline,
          "-drive", f"file={root},if=virtio,format=qcow2,cache=unsafe,discard=unmap"]
    if payload:
        q += ["-drive", f"file={pimg},if=virtio,format=raw,cache=unsafe"]
    if extra_disk_mb and extra_disk_args:
        q += [a.replace("{extra}", extra) for a in extra_disk_args]
    elif extra_disk_mb:
        q += ["-drive", f"file={extra},if=virtio,format=raw,cache=unsafe"]

    mock = None
    netdev = "user,id=n0,restrict=on"
    reqlog = os.path.join(out, "api-requests.jsonl")
    if mock_cmd:
        if " " in RELAY or "," in RELAY:
            raise RuntimeError(f"relay path {RELAY} must not contain spaces or commas (guestfwd)")
        port = free_port()
        if os.path.exists(reqlog):
            os.unlink(reqlog)
        argv = [a.replace("{port}", str(port)).replace("{log}", reqlog) for a in shlex.split(mock_cmd)]
        log(f"mock API: {shlex.join(argv)}")
        mock = subprocess.Popen(argv, stdout=open(os.path.join(out, "mock.log"), "wb"),
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_port(port, mock)
        netdev += f",guestfwd=tcp:10.0.2.100:80-cmd:/usr/bin/python3 {RELAY} {port}"
    elif mock_port:
        netdev += f",guestfwd=tcp:10.0.2.100:80-cmd:/usr/bin/python3 {RELAY} {mock_port}"
    for host_port, guest_port in hostfwd:
        netdev += f",hostfwd=tcp:127.0.0.1:{host_port}-:{guest_port}"
    q += ["-netdev", netdev, "-device", "virtio-net-pci,netdev=n0",
          "-chardev", "stdio,id=s0,signal=off", "-serial", "chardev:s0"]
    with open(os.path.join(out, "qemu-cmdline.txt"), "w") as f:
        f.write(shlex.join(q) + "\n")

    log(f"booting {guest} guest ({accel}{', OVMF' if efi else ''}), serial log {out}/serial.log")
    t0 = time.time()
    proc = subprocess.Popen(q, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=open(os.path.join(out, "qemu-stderr.txt"), "wb"))
    serial = Serial(proc.stdout, os.path.join(out, "serial.log"), stream, t0)
    if kill_on:
        serial.kill = (kill_on.encode(), kill_delay, proc)
    serial.start()
    timed_out = False
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        log(f"timeout after {timeout} s: stopping QEMU")
        proc.terminate()
        try:
            rc = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
    finally:
        if mock:
            mock.terminate()
            try:
                mock.wait(timeout=5)
            except subprocess.TimeoutExpired:
                mock.kill()
    serial.join(timeout=10)
    seconds = time.time() - t0
    text = open(os.path.join(out, "serial.log"), "rb").read().decode("utf-8", "replace")
    payload_exit = None
    for line in text.splitlines():
        if line.startswith("PAYLOAD-EXIT:"):
            try:
                payload_exit = int(line.split(":", 1)[1].strip())
            except ValueError:
                pass
    if payload:
        extract_out(pimg, payload_fs, out)
    hook = serial.marks.get(b"PAYLOAD-HOOK: start")
    res = {
        "guest": guest, "accel": accel, "efi": efi,
        "end": "killed" if "killed" in serial.marks and rc == -9 else classify_end(text, timed_out, rc),
        "qemu_status": rc, "killed_at": serial.marks.get("killed"),
        "payload_exit": payload_exit, "seconds": round(seconds, 1),
        "boot_to_payload_seconds": round(hook, 1) if hook is not None else None,
        "root_disk": root, "payload_disk": pimg if payload else None,
        "payload_offset": PAYLOAD_OFFSET, "payload_fs": payload_fs,
        "extra_disk": extra if extra_disk_mb else None,
        "serial_log": os.path.join(out, "serial.log"), "out": os.path.join(out, "out"),
        "api_requests": reqlog if mock_cmd else None,
    }
    with open(os.path.join(out, "result.json"), "w") as f:
        json.dump(res, f, indent=1)
    log(f"guest ended: {res['end']} after {res['seconds']} s (payload exit {payload_exit}, "
        f"payload started at {res['boot_to_payload_seconds']} s)")
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--guest", choices=["systemd", "sysvinit"], default="systemd")
    ap.add_argument("--payload", help="directory copied onto the PAYLOAD disk (must hold run.sh)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--stream", action="store_true", help="echo the serial console")
    ap.add_argument("--mock", action="store_true", help="start the default mock API")
    ap.add_argument("--mock-cmd", help="start this mock ({port}, {log} substituted)")
    ap.add_argument("--efi", action="store_true", help="q35 + OVMF")
    ap.add_argument("--extra-disk", type=int, default=0, metavar="MIB")
    ap.add_argument("--payload-fs", choices=["ext4", "vfat"], default="ext4")
    ap.add_argument("--reuse-disk", action="store_true", help="boot RUNDIR/root.qcow2 again")
    ap.add_argument("--disk", default="", help="boot this root disk (e.g. another run's root.qcow2)")
    ap.add_argument("--accel", choices=["auto", "tcg", "kvm"], default="",
                    help="default: VM_ACCEL, else auto (KVM only when it really works)")
    ap.add_argument("--mem", type=int, default=1024)
    ap.add_argument("--append", default="", help="extra kernel command line")
    a = ap.parse_args()
    if a.payload and not os.path.exists(os.path.join(a.payload, "run.sh")):
        ap.error(f"{a.payload}/run.sh does not exist")
    mock = a.mock_cmd or (default_mock_cmd() if a.mock else None)
    try:
        res = run_vm(a.guest, a.payload, a.out, a.timeout, a.stream, mock, a.efi, a.extra_disk,
                     a.payload_fs, a.reuse_disk, a.accel, a.mem, a.append, a.disk)
    except (RuntimeError, subprocess.CalledProcessError, OSError) as e:
        log(f"error: {e}")
        return 1
    print(json.dumps(res))
    return 0 if res["end"] in ("poweroff", "reboot") else 1


if __name__ == "__main__":
    sys.exit(main())
