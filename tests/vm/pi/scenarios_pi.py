"""Raspberry Pi scenarios of the VM test bed (issue 17), registered into tests/vm/scenarios.py.

Emulated boards (tests/vm/build-pi-guest.sh): pi3 = QEMU raspi3b with the aarch64 release
binary, pi2 = QEMU raspi2b with the armv7 one. Binaries: the `make release` builds in dist/
(PI_DIST overrides the directory); the fault-injection build for aarch64 in
target/fault-injection/aarch64-unknown-linux-musl/release/takeover (`make pi-fault-binary`).

Which Pi scenarios run: VM_PI=all (default) | ci (pi3-64-migrate and pi2-32-migrate only, the
rest SKIP) | 0 (none). Each migration also runs stage 1 once with a fleet of the wrong device
type for the board (same boot, before the real run): it must be refused with exit 1.
The Pi guests have no network (QEMU's usb-net on the emulated dwc2 host is not used), so stage 1
runs with --no-api-check --no-vpn-check; the API scenarios stay on the x86 guests.
"""
import glob
import json
import os
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
import run_pi  # noqa: E402  (tests/vm/pi is on sys.path, see register())

S = None  # the scenarios module (set by register)

BOARDS = {
    "pi3": {"triple": "aarch64-unknown-linux-musl", "dt": "raspberrypi3-64", "wrong": "raspberrypi4-64",
            "model": "Raspberry Pi 3 Model B", "hostname": "takeover-pi3",
            "wifi": ["PiHome", "Workshop 5G"], "elf": "b7"},
    "pi2": {"triple": "armv7-unknown-linux-musleabihf", "dt": "raspberry-pi2", "wrong": "raspberrypi3-64",
            "model": "Raspberry Pi 2 Model B", "hostname": "takeover-pi2",
            "wifi": ["PiHome", "Shed Net"], "elf": "28"},
}
PSKS = ["pi-home-secret-3", "workshop-pass-77", "shed-secret-2020"]
CI_SET = ("pi3-64-migrate", "pi2-32-migrate")
# The Pi 2's dhcpcd.conf static address must become an ethernet keyfile (PI_DHCPCD_REQUIRED=0:
# only reported, for a build without the dhcpcd reader).
DHCPCD_REQUIRED = os.environ.get("PI_DHCPCD_REQUIRED", "1") == "1"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))


def binary(board: str, fault: bool = False) -> str:
    t = BOARDS[board]["triple"]
    if fault:
        p = os.path.join(ROOT, "target", "fault-injection", t, "release", "takeover")
        if not os.path.isfile(p):
            raise S.Failed(f"no fault-injection binary {p} (make pi-fault-binary)")
        return p
    dist = os.environ.get("PI_DIST", os.path.join(ROOT, "dist"))
    found = sorted(glob.glob(os.path.join(dist, f"takeover-*-{t}")))
    if not found:
        raise S.Failed(f"no release binary {dist}/takeover-<version>-{t} (make release)")
    return found[-1]


class Fleet:
    """S.CONFIG with the board's device type while a scenario runs (payload and assertions)."""

    def __init__(self, dt: str):
        self.dt = dt

    def __enter__(self):
        self.saved = S.CONFIG
        S.CONFIG = dict(S.CONFIG, deviceType=self.dt)

    def __exit__(self, *a):
        S.CONFIG = self.saved


# The x86 migration run.sh (scenarios.MIGRATE_RUN) with the board's facts first, the wrong
# fleet's stage 1 before the real one, and no API/VPN checks (no network on the Pi guests).
BOARD_FACTS = """
say "board: $(tr -d '\\0' </proc/device-tree/model), $(uname -m), kernel $(uname -r)"
say "binary: {name}, ELF machine 0x$(od -An -tx1 -j18 -N1 ./takeover | tr -d ' ')"
"""


def run_template() -> str:
    t = S.MIGRATE_RUN.replace("./takeover --no-ack", "./takeover --no-ack --no-api-check --no-vpn-check")
    return BOARD_FACTS + t.replace("\nfacts\n", "\nfacts\n{wrong}\n", 1)


WRONG = """
say "wrong fleet: takeover with a {wrong} config.json and image (must be refused)"
mkdir -p /payload/out/wrong
./takeover --no-ack --no-api-check --no-vpn-check -c /payload/config-wrong.json -i /payload/wrong.img.gz -w /payload/out/wrong \\
    --report /payload/out/wrong-report.json >"$OUT/wrong.log" 2>&1
echo $? >"$OUT/wrong.rc"
rm -f /payload/config-wrong.json  # holds the test keys: not an input the secrets check allows
say "wrong fleet: exit $(cat "$OUT/wrong.rc")"
"""


def pi_run(ctx, name, board, args, files=None, env="", fault=False, wrong=True, timeout=None):
    b = BOARDS[board]
    bin_path = binary(board, fault)
    files = dict(files or {})
    files["config.json"] = json.dumps(S.CONFIG).encode()
    wrong_sh = ""
    if wrong:
        img, _ = S.dt_image("mbr", b["wrong"], 64)
        files["wrong.img.gz"] = img
        files["config-wrong.json"] = json.dumps(dict(S.CONFIG, deviceType=b["wrong"])).encode()
        wrong_sh = WRONG.replace("{wrong}", b["wrong"])
    run_sh = (run_template().replace("{args}", args).replace("{env}", env).replace("{wrong}", wrong_sh)
              .replace("{name}", f"target/fault-injection/{b['triple']}/release/takeover (fault-injection build)"
                       if fault else os.path.basename(bin_path)))
    p = S.payload(name, bin_path, run_sh, files)
    os.makedirs(os.path.join(p, "out", "work"), exist_ok=True)
    res = run_pi.run_pi(board, p, os.path.join(S.OUT, name), timeout=timeout or ctx.timeout,
                        stream=ctx.stream)
    res["payload_disk"] = payload_disk(res)
    return res


def payload_disk(res) -> str:
    """The PAYLOAD partition of the card as a one-partition disk image, so that the x86
    secrets check (S.assert_no_secrets) reads it like the x86 payload disk."""
    info = run_pi.guest_info(res["board"])
    img = os.path.join(os.path.dirname(res["serial_log"]), "payload.img")
    size = info["payload_mib"] << 20
    with open(img, "wb") as f:
        f.truncate(size + (1 << 20))
    subprocess.run(["sfdisk", "-q", "--no-reread", "--no-tell-kernel", img],
                   input="label: dos\nunit: sectors\nstart=2048, type=83\n", text=True,
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["dd", f"if={res['root_disk']}", f"of={img}", "bs=1M", "seek=1",
                    f"skip={info['payload_offset'] >> 20}", f"count={info['payload_mib']}",
                    "conv=notrunc,sparse", "status=none"], check=True)
    return img


def serial_facts(res, board) -> str:
    """The board's device-tree model and the binary's target, as the serial log shows them."""
    text = S.read(res["serial_log"], "")
    b = BOARDS[board]
    S.check(f"board: {b['model']}" in text, f"serial log lacks the model {b['model']!r}")
    S.check(b["triple"] in text, f"serial log lacks the binary's target {b['triple']}")
    S.check(f"ELF machine 0x{b['elf']}" in text, "the binary is not built for the board's CPU")
    return f"{b['model']}, {b['triple']}"


def wrong_refused(res, board) -> str:
    b = BOARDS[board]
    rc = (S.read(os.path.join(res["out"], "wrong.rc"), "") or "").strip()
    log = S.read(os.path.join(res["out"], "wrong.log"), "") or ""
    S.check(rc == "1", f"stage 1 with a {b['wrong']} fleet exited {rc or '?'} (must refuse with 1)")
    S.check(b["wrong"] in log, f"the refusal does not name {b['wrong']}: {log[-300:]!r}")
    return f"{b['wrong']} refused"


def fsck(res) -> str:
    """fsck.fat -n of resin-boot and e2fsck -n of resin-data (copies of the partitions)."""
    out = []
    with S.inspect_disk.Disk(res["root_disk"]) as d, tempfile.TemporaryDirectory(prefix="pifsck.") as t:
        for label, cmd in (("resin-boot", ["fsck.fat", "-n"]), ("resin-data", ["e2fsck", "-n", "-f"])):
            p = d.find(label)
            S.check(p is not None, f"no {label} partition")
            part = os.path.join(t, label)
            subprocess.run(["dd", f"if={d.raw}", f"of={part}", "bs=1M", f"skip={p['start'] >> 20}",
                            f"count={p['size'] >> 20}", "status=none"], check=True)
            r = subprocess.run(cmd + [part], capture_output=True, text=True)
            S.check(r.returncode == 0, f"{' '.join(cmd)} {label}: exit {r.returncode}: "
                    f"{(r.stdout + r.stderr).strip()[-300:]}")
            out.append(f"{cmd[0]} {label} clean")
    return ", ".join(out)


def keyfiles(res) -> dict:
    """resin-boot/system-connections/*: name -> text."""
    with S.inspect_disk.Disk(res["root_disk"]) as d:
        boot = d.find("resin-boot")
        return {f: (d.fat_cat(boot, f) or b"").decode("utf-8", "replace")
                for f in d.fat_tree(boot)
                if f.startswith("system-connections/") and not f.endswith(".ignore")
                and d.fat_cat(boot, f) is not None}


def migration(ctx, board, name) -> tuple:
    b = BOARDS[board]
    with Fleet(b["dt"]):
        img, man = S.dt_image("mbr", b["dt"], 64)
        res = pi_run(ctx, name, board, "-i /payload/image.img.gz --backup-cfg /srv/app/backup.yml",
                     {"image.img.gz": img})
        S.vm_ok(res, "reboot")
        facts = serial_facts(res, board)
        wrong = wrong_refused(res, board)
        S.check(S.stage1_rc(res) == "0", "stage 1 did not exit 0")
        S.check("stage 2 finished" in S.read(res["serial_log"], ""), "stage 2 did not finish")
        got = S.assert_migrated(res, res["root_disk"], man, board)
        with S.inspect_disk.Disk(res["root_disk"]) as d:
            boot = d.find("resin-boot")
            for f in ("config.txt", "cmdline.txt"):
                S.check(d.fat_cat(boot, f) is not None, f"resin-boot lost {f}")
            dt = json.loads(d.fat_cat(boot, "device-type.json") or b"{}")
            S.check(dt.get("slug") == b["dt"], f"device-type.json slug {dt.get('slug')!r}")
        clean = fsck(res)
        sec = S.assert_no_secrets(res, res["root_disk"])
    return res, f"{facts}; {wrong}; keyfiles {got['ssids']}; {clean}; {sec}"


def stage_times(res) -> str:
    """Boot (power-on to the payload hook) and migration (hook to the reboot line) times."""
    boot = res.get("boot_to_payload_seconds")
    if boot is None:
        return f"run {res['seconds']} s"
    return f"boot {boot} s, migration {res['seconds'] - boot:.0f} s (run {res['seconds']} s)"


def m_pi3_migrate(ctx):
    res, detail = migration(ctx, "pi3", "pi3-64-migrate")
    kf = keyfiles(res)
    wired = [n for n, t in kf.items() if "type=ethernet" in t]
    S.check(any("192.168.50.17" in kf[n] for n in wired),
            f"no ethernet keyfile with the static address 192.168.50.17 among {sorted(kf)}")
    return f"{stage_times(res)}; {detail}; ethernet {wired}"


def m_pi2_migrate(ctx):
    res, detail = migration(ctx, "pi2", "pi2-32-migrate")
    kf = keyfiles(res)
    static = [n for n, t in kf.items() if "192.168.1.42" in t]
    if DHCPCD_REQUIRED:
        S.check(static, f"no keyfile with dhcpcd's static address 192.168.1.42 among {sorted(kf)}")
    note = f"dhcpcd static address in {static}" if static else "dhcpcd static address not migrated"
    return f"{stage_times(res)}; {detail}; {note}"


def old_os_back(ctx, res, name, board="pi3") -> dict:
    """Boots the card of `res` again: the old OS with its hostname and app data."""
    p = S.payload(name, binary(board), "facts\nls /var/log >\"$OUT/varlog\"\n")
    res2 = run_pi.run_pi(board, p, os.path.join(S.OUT, name), timeout=ctx.timeout,
                         stream=ctx.stream, disk=res["root_disk"])
    S.vm_ok(res2)
    S.check(S.read(os.path.join(res2["out"], "hostname"), "").strip() == BOARDS[board]["hostname"],
            "old OS not back")
    S.check("file with spaces.txt" in S.read(os.path.join(res2["out"], "appdata"), ""), "app data lost")
    return res2


def card_unchanged(res, board="pi3") -> None:
    """The card's partition table and first MiB equal the cached card's."""
    base = os.path.join(run_pi.guest_dir(board), "sd.img")
    with S.inspect_disk.Disk(base) as a, S.inspect_disk.Disk(res["root_disk"]) as b:
        S.check(a.layout() == b.layout(), "the SD card's partition table changed")
        S.check(a.region_digest(0, 1 << 20) == b.region_digest(0, 1 << 20), "the SD card's first MiB changed")


def var_log(res2, prefix) -> str:
    logs = [x for x in S.read(os.path.join(res2["out"], "varlog"), "").split() if x.startswith(prefix)]
    S.check(logs, f"no /var/log/{prefix}*.log on the old OS")
    return logs[0]


def m_pi3_pretend(ctx):
    with Fleet("raspberrypi3-64"):
        img, _ = S.dt_image("mbr", "raspberrypi3-64", 64)
        res = pi_run(ctx, "pi3-64-pretend", "pi3", "-i /payload/image.img.gz --pretend",
                     {"image.img.gz": img}, wrong=False)
    S.vm_ok(res, "reboot")
    facts = serial_facts(res, "pi3")
    S.check("--pretend: not writing" in S.read(res["serial_log"], ""), "stage 2 did not run in pretend mode")
    card_unchanged(res)
    res2 = old_os_back(ctx, res, "pi3-64-pretend-reboot")
    log = var_log(res2, "takeover-pretend-")
    return f"{facts}; old OS back with /var/log/{log}; runs {res['seconds']} s + {res2['seconds']} s"


def m_pi3_fault(ctx):
    with Fleet("raspberrypi3-64"):
        img, _ = S.dt_image("mbr", "raspberrypi3-64", 64)
        res = pi_run(ctx, "pi3-64-failure-before-flash", "pi3", "-i /payload/image.img.gz",
                     {"image.img.gz": img}, env="TAKEOVER_FAULT=before-flash ", fault=True, wrong=False)
    S.vm_ok(res, "reboot")
    text = S.read(res["serial_log"], "")
    S.check("injected failure" in text and "nothing was written" in text,
            "stage 2 did not report the injected failure")
    card_unchanged(res)
    res2 = old_os_back(ctx, res, "pi3-64-failure-before-flash-reboot")
    log = var_log(res2, "takeover-failed-")
    return f"{serial_facts(res, 'pi3')}; old OS back with /var/log/{log}; runs {res['seconds']} s + {res2['seconds']} s"


def m_pi3_watchdog(ctx):
    """PID 1 hangs right after arming the watchdog (softdog, 5 s): the board is reset."""
    pre = ("modprobe -r softdog && modprobe softdog soft_margin=5 || { say 'softdog reload failed'; exit 3; }\n"
           "[ -c /dev/watchdog ] || { say 'no /dev/watchdog'; exit 3; }\n")
    with Fleet("raspberrypi3-64"):
        img, _ = S.dt_image("mbr", "raspberrypi3-64", 64)
        res = pi_run(ctx, "pi3-64-watchdog-hang", "pi3", "-i /payload/image.img.gz",
                     {"image.img.gz": img}, env=pre + "TAKEOVER_FAULT=hang:supervise ", fault=True, wrong=False)
    S.vm_ok(res, "reboot")
    text = S.read(res["serial_log"], "")
    S.check("feeding the hardware watchdog" in text, "PID 1 did not open the watchdog")
    S.check("hanging at supervise" in text, "PID 1 did not hang")
    S.check(S.SOFTDOG_EXPIRED in text, "the board was not reset by the watchdog")
    after = text.split("hanging at supervise", 1)[-1]
    S.check("rebooting" not in after, "PID 1 rebooted by itself: the hang was not a hang")
    card_unchanged(res)
    res2 = old_os_back(ctx, res, "pi3-64-watchdog-hang-reboot")
    return f"{serial_facts(res, 'pi3')}; softdog reset, old OS back; runs {res['seconds']} s + {res2['seconds']} s"


SCENARIOS = [
    ("pi3-64-migrate", m_pi3_migrate, "stage2+pi"),
    ("pi2-32-migrate", m_pi2_migrate, "stage2+pi"),
    ("pi3-64-pretend", m_pi3_pretend, "stage2+pi"),
    ("pi3-64-failure-before-flash", m_pi3_fault, "stage2+pi+fault-injection"),
    ("pi3-64-watchdog-hang", m_pi3_watchdog, "stage2+pi+fault-injection"),
]


def register(scenarios_module) -> None:
    """Adds the Pi scenarios (and the Pi guests' PSKs to the secrets) to scenarios.py."""
    global S
    S = scenarios_module
    S.SECRETS.extend(p for p in PSKS if p not in S.SECRETS)
    for b, v in BOARDS.items():
        S.HOSTNAMES.setdefault(b, v["hostname"])
        S.WIFI.setdefault(b, v["wifi"])
    mode = os.environ.get("VM_PI", "all")
    for name, fn, needs in SCENARIOS:
        if mode == "0" or (mode == "ci" and name not in CI_SET):
            def skip(ctx, _n=name):
                raise S.Skipped(f"Pi scenario not selected (VM_PI={mode}; `make e2e` runs all)")
            S.scenario(name, needs)(skip)
        else:
            S.scenario(name, needs)(fn)
