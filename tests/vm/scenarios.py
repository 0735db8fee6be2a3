#!/usr/bin/python3
"""VM scenarios of the takeover test bed (issues 7 and 9).

    tests/vm/scenarios.py [--binary PATH] [--only NAME ...] [--list] [--with-stage2] [--stream]

Each scenario prints `PASS name (Ns)` or `FAIL name: reason`; scenarios that cannot run here
print `SKIP name: reason` (counted neither as passed nor as failed). The last line is
`N passed, M failed, K skipped`; the exit status is 1 when anything failed.

Guests must be built first (tests/vm/build-guest.sh systemd|sysvinit, or `make vm-guests`).
Run directories are kept under tests/vm/out/<scenario>/ for inspection.

The migration scenarios of issue 9 run by default (VM_STAGE2=0 or --without-stage2 skips them).
failure-before-flash-restores needs a second static binary built with the cargo feature
`fault-injection` (--fault-binary; `make e2e` builds it into target/fault-injection/).
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, HERE)
import inspect_disk  # noqa: E402
import run as vm  # noqa: E402

ROOT = vm.ROOT
OUT = os.environ.get("VM_OUT", os.path.join(HERE, "out"))
IMAGES = os.path.join(OUT, "images")
MKIMAGE = os.path.join(ROOT, "tests", "tools", "mkimage.sh")
DEFAULT_BINARY = os.path.join(ROOT, "target", "x86_64-unknown-linux-musl", "release", "takeover")
DEFAULT_FAULT_BINARY = os.path.join(ROOT, "target", "fault-injection", "x86_64-unknown-linux-musl",
                                    "release", "takeover")
REAL_MOCK = os.path.join(ROOT, "tests", "mock-api", "mock_api.py")
STAGE2_REASON = "migration scenarios switched off (VM_STAGE2=0 / --without-stage2)"

HOSTNAMES = {"systemd": "takeover-guest", "sysvinit": "takeover-guest-sysv"}
INIT_COMM = {"systemd": "systemd", "sysvinit": "init"}
# Wi-Fi networks the guests know (tests/vm/build-guest.sh), by SSID.
WIFI = {"systemd": ["HomeNet", "Office 5G", "CafeFree", "LegacyNet"],
        "sysvinit": ["HomeNet", "Garage AP", "OpenCafe"]}
BACKUP_EXPECT = ["app-data/readme.txt", "app-data/file with spaces.txt", "app-data/blob.bin",
                 "app-data/sub dir/table.csv", "app-data/sub dir/deeper/nested.txt",
                 "app-config/app.conf"]
REPORT_KEYS = ["takeover_version", "mode", "result", "error", "device", "os", "init", "target",
               "image", "network", "hostname", "backup", "ram", "checks"]

CONFIG = {
    "applicationId": 1234, "applicationName": "testfleet", "deviceType": "genericx86-64-ext",
    "userId": 7, "username": "tester", "appUpdatePollInterval": 900000, "listenPort": 48484,
    "vpnPort": 80, "apiEndpoint": "http://10.0.2.100", "vpnEndpoint": "10.0.2.100",
    "registryEndpoint": "registry2.balena-cloud.com", "deltaEndpoint": "https://delta.balena-cloud.com",
    "apiKey": "TESTprovisioningKEY0123456789abcd", "persistentLogging": False,
    "deviceApiKey": "TESTdeviceAPIkeyFEDCBA9876543210",
}
# Wi-Fi PSKs the guests know (tests/vm/build-guest.sh): secrets that must never leak.
PSKS = {"systemd": ["correct horse battery", "office-pass-1234", "legacy-secret-42"],
        "sysvinit": ["correct horse battery", "garage-secret-77"]}
SECRETS = [CONFIG["apiKey"], CONFIG["deviceApiKey"]] + sorted(set(PSKS["systemd"] + PSKS["sysvinit"]))


class Failed(Exception):
    pass


class Skipped(Exception):
    """Raised by a scenario that ran but found the feature it tests not there yet."""


def check(cond, reason: str) -> None:
    if not cond:
        raise Failed(reason)


def read(path: str, default=None):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return default


# ------------------------------------------------------------------------------------ fixtures
def image(variant: str = "mbr", size: int = 64) -> tuple:
    """(path of .img.gz, manifest) of a fake balenaOS image, rebuilt when mkimage.sh changes."""
    os.makedirs(IMAGES, exist_ok=True)
    prefix = os.path.join(IMAGES, f"{variant}-{size}")
    key = hashlib.sha256(open(MKIMAGE, "rb").read()).hexdigest()[:16]
    stamp = prefix + ".stamp"
    if read(stamp) != key or not os.path.exists(prefix + ".img.gz"):
        subprocess.run([MKIMAGE, "--variant", variant, "--size", str(size), prefix], check=True,
                       stdout=subprocess.DEVNULL)
        os.unlink(prefix + ".img")  # the raw file is not needed by the scenarios
        with open(stamp, "w") as f:
            f.write(key)
    return prefix + ".img.gz", json.load(open(prefix + ".manifest.json"))


def payload(name: str, binary: str, run_sh: str, files=None) -> str:
    """A payload directory: takeover, config.json, lib.sh, run.sh and extra files."""
    d = os.path.join(OUT, name, "payload")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    shutil.copy(binary, os.path.join(d, "takeover"))
    os.chmod(os.path.join(d, "takeover"), 0o755)
    shutil.copy(os.path.join(HERE, "payload", "lib.sh"), d)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(CONFIG, f)
    with open(os.path.join(d, "secrets.txt"), "w") as f:  # for lib.sh's argv_watch
        f.write("".join(x + "\n" for x in SECRETS))
    with open(os.path.join(d, "run.sh"), "w") as f:
        f.write("set -u\ncd /payload\n. ./lib.sh\n" + run_sh)
    for dst, src in (files or {}).items():
        if isinstance(src, bytes):
            with open(os.path.join(d, dst), "wb") as f:
                f.write(src)
        else:
            shutil.copy(src, os.path.join(d, dst))
    return d


MOCK_VERSIONS = "5.1.20+rev1,5.1.20,5.0.3+rev2"


def mock_cmd(img=None) -> str:
    """The mock API knowing the config's key and device type (a flasher type, like x86 in
    balena's contracts); with `img` it serves that file as balenaOS 5.1.20+rev1."""
    dt = CONFIG["deviceType"]
    extra = (f"--api-key {CONFIG['apiKey']} --device-type {dt} --flasher {dt} "
             f"--versions {dt}={MOCK_VERSIONS}")
    if img:
        extra += f" --image {dt}@5.1.20+rev1={img}"
    return vm.default_mock_cmd(extra)


_BASE_FACTS: dict = {}


def base_facts(flavour: str) -> dict:
    """Partition table and first MiB of the cached base disk (what a clean guest starts from)."""
    if flavour not in _BASE_FACTS:
        with inspect_disk.Disk(os.path.join(vm.guest_dir(flavour), "base.qcow2")) as d:
            _BASE_FACTS[flavour] = {"table": d.layout(), "first_mib": d.region_digest(0, 1 << 20)}
    return _BASE_FACTS[flavour]


def root_unchanged_on_disk(res: dict, flavour: str) -> None:
    """Host-side: the guest disk's partition table and first MiB equal the base disk's.
    (The root filesystem itself changes on every boot - journal, logs - so file-level state is
    compared inside the guest by lib.sh's snap.)"""
    base = base_facts(flavour)
    with inspect_disk.Disk(res["root_disk"]) as d:
        check(d.layout() == base["table"], "the root disk's partition table changed: "
              f"{d.layout()} (base: {base['table']})")
        check(d.region_digest(0, 1 << 20) == base["first_mib"], "the root disk's first MiB changed")


def snap_unchanged(out: str) -> None:
    diffs = []
    for f in ("mounts", "swaps", "tree", "digests", "vda_first_mib"):
        a, b = read(os.path.join(out, "snap-before", f)), read(os.path.join(out, "snap-after", f))
        check(a is not None and b is not None, f"snapshot file {f} missing (payload did not finish)")
        if a != b:
            la, lb = set(a.splitlines()), set(b.splitlines())
            ex = sorted(la ^ lb)[:6]
            diffs.append(f"{f}: {len(la - lb)} gone/{len(lb - la)} new, e.g. {ex}")
    check(not diffs, "system state changed during the dry-run: " + "; ".join(diffs))
    a = set((read(os.path.join(out, "snap-before", "modules")) or "").split())
    b = set((read(os.path.join(out, "snap-after", "modules")) or "").split())
    return sorted(b - a)  # informational: udev autoloads modules at any time


def vm_ok(res: dict, end: str = "poweroff") -> None:
    check(res["end"] == end, f"guest ended with {res['end']} (expected {end}); see {res['serial_log']}")


def stage1_rc(res: dict) -> str:
    """Stage 1's exit code as run.sh wrote it. Stage 2 stops every process soon after stage 1
    exits, so run.sh can be killed before it writes the code; the report stage 1 wrote before
    exiting then stands in ("ok": 0, "failed": 1)."""
    rc = (read(os.path.join(res["out"], "takeover.rc"), "") or "").strip()
    if rc:
        return rc
    rep = json.loads(read(os.path.join(res["out"], "report.json"), "") or "{}")
    return {"ok": "0", "failed": "1"}.get(rep.get("result"), "")


# ------------------------------------------------------------------------------------ scenarios
SCENARIOS = []


def scenario(name, needs=None):
    def wrap(fn):
        SCENARIOS.append((name, fn, needs))
        return fn
    return wrap


_RUNS: dict = {}


def boot_run(ctx, flavour: str) -> dict:
    """One boot of `flavour` that runs `takeover --help`, records guest facts, pings the mock and
    downloads an image from it with `takeover -d --version` (curl on the systemd guest, GNU wget
    on the sysvinit one); shared by the boot-*, guest-facts-*, guest-network-* and
    download-only-* scenarios."""
    key = ("boot", flavour)
    if key not in _RUNS:
        name = f"boot-{flavour}"
        img, _ = image("mbr", 64)
        p = payload(name, ctx.binary, """
facts
./takeover --help >"$OUT/help.txt" 2>&1; echo $? >"$OUT/help.rc"
ping_api
say "help exit $(cat "$OUT/help.rc"), ping exit $(cat "$OUT/ping.rc")"
# The guest's own HTTP client fetches the image through guestfwd (the transfer path itself).
body='{"deviceType":"genericx86-64-ext","version":"5.1.20+rev1","fileType":".gz","imageType":"raw"}'
if command -v curl >/dev/null; then
    curl -sS -K /payload/curlrc -o "$OUT/native.img.gz" --data-binary "$body" \
        -H 'Content-Type: application/json' http://10.0.2.100/download
else
    WGETRC=/payload/wgetrc wget -q -O "$OUT/native.img.gz" --post-data="$body" \
        --header='Content-Type: application/json' http://10.0.2.100/download
fi
echo $? >"$OUT/native.rc"
say "native client download exit $(cat "$OUT/native.rc")"
say "running: takeover -d -c config.json --version 5.1.20+rev1"
./takeover -d -c /payload/config.json --version 5.1.20+rev1 -w /payload/out/dl \
    --report /payload/out/dl-report.json 2>&1 | tee "$OUT/dl.log"
echo "${PIPESTATUS[0]}" >"$OUT/dl.rc"
say "takeover -d exited $(cat "$OUT/dl.rc")"
""", {"curlrc": f'header = "Authorization: Bearer {CONFIG["apiKey"]}"\n'.encode(),
      "wgetrc": f'header = Authorization: Bearer {CONFIG["apiKey"]}\n'.encode()})
        _RUNS[key] = vm.run_vm(flavour, p, os.path.join(OUT, name), timeout=ctx.timeout,
                               stream=ctx.stream, mock_cmd=mock_cmd(img))
    return _RUNS[key]


def assert_boot(ctx, flavour):
    res = boot_run(ctx, flavour)
    vm_ok(res)
    check(res["payload_exit"] == 0, f"payload exit {res['payload_exit']}")
    rc = read(os.path.join(res["out"], "help.rc"), "").strip()
    check(rc == "0", f"`takeover --help` exited {rc or 'not at all'} inside the guest")
    help_text = read(os.path.join(res["out"], "help.txt"), "")
    check("--dry-run" in help_text, "`takeover --help` does not mention --dry-run")
    return f"boot to payload {res['boot_to_payload_seconds']} s, run {res['seconds']} s"


def assert_facts(ctx, flavour):
    res = boot_run(ctx, flavour)
    o = res["out"]
    check(read(os.path.join(o, "hostname"), "").strip() == HOSTNAMES[flavour], "hostname not set")
    check("/swapfile" in read(os.path.join(o, "swaps"), ""), "swap is not enabled")
    check(read(os.path.join(o, "init_comm"), "").strip() == INIT_COMM[flavour],
          f"PID 1 is {read(os.path.join(o, 'init_comm'), '?').strip()}")
    appdata = read(os.path.join(o, "appdata"), "")
    check("f data/file with spaces.txt" in appdata, "application data missing")
    ssids = read(os.path.join(o, "wpa_ssids"), "")
    if flavour == "systemd":
        nm = read(os.path.join(o, "nm_profiles"), "").split("\n")
        check(len([x for x in nm if x.endswith(".nmconnection")]) == 4, f"NM profiles: {nm}")
    check("ssid=" in ssids, "no wpa_supplicant networks")
    return f"kernel {read(os.path.join(o, 'uname'), '?').strip()}"


def assert_network(ctx, flavour):
    res = boot_run(ctx, flavour)
    o = res["out"]
    rc = read(os.path.join(o, "ping.rc"), "").strip()
    body = read(os.path.join(o, "ping.txt"), "")
    check(rc == "0" and body.rstrip().endswith("OK"), f"GET http://10.0.2.100/ping failed (rc {rc}): {body[:200]!r}")
    reqs = [json.loads(x) for x in read(res["api_requests"], "").splitlines() if x.strip()]
    check(any(r.get("path", "").startswith("/ping") for r in reqs), "the mock recorded no /ping")
    return f"{len(reqs)} request(s) recorded by the mock"


def assert_transfer(ctx, flavour):
    """The guest's own client (curl / GNU wget) POSTs /download to http://10.0.2.100 and gets
    the served image byte for byte through QEMU's guestfwd relay."""
    if not os.path.exists(REAL_MOCK):
        raise Skipped("needs the mock API tests/mock-api/mock_api.py")
    res = boot_run(ctx, flavour)
    o = res["out"]
    rc = read(os.path.join(o, "native.rc"), "").strip()
    check(rc == "0", f"{'curl' if flavour == 'systemd' else 'wget'} exited {rc or 'not at all'}")
    _, man = image("mbr", 64)
    f = os.path.join(o, "native.img.gz")
    got = hashlib.sha256(open(f, "rb").read()).hexdigest() if os.path.exists(f) else None
    check(got == man["gz_sha256"], "the image fetched in the guest differs from the served one")
    return f"{os.path.getsize(f)} bytes intact"


def assert_download(ctx, flavour):
    """`takeover -d --version 5.1.20+rev1` in the guest fetches the image from the mock API
    through guestfwd: the file is byte-identical, the requests are the reference's."""
    if not os.path.exists(REAL_MOCK):
        raise Skipped("needs the mock API tests/mock-api/mock_api.py")
    res = boot_run(ctx, flavour)
    o = res["out"]
    rc = read(os.path.join(o, "dl.rc"), "").strip()
    rep = json.loads(read(os.path.join(o, "dl-report.json")) or "null") or {}
    if rc != "0" and "not implemented" in str(rep.get("error")):
        raise Skipped(f"takeover -d is not wired in yet: {rep.get('error')!r}")
    check(rc == "0", f"takeover -d exited {rc or 'not at all'}: {rep.get('error')!r}")
    _, man = image("mbr", 64)
    dl = os.path.join(o, "dl")
    files = sorted(os.listdir(dl)) if os.path.isdir(dl) else []
    imgs = [f for f in files if f.endswith(".img.gz")]
    check(len(imgs) == 1, f"work dir holds {files}")
    got = hashlib.sha256(open(os.path.join(dl, imgs[0]), "rb").read()).hexdigest()
    check(got == man["gz_sha256"], "the downloaded image differs from the one the mock served")
    reqs = [json.loads(x) for x in read(res["api_requests"], "").splitlines() if x.strip()]
    paths = [(r.get("method"), r.get("path")) for r in reqs]
    for want in (("GET", "/v6/release"), ("GET", "/v6/device_type"), ("POST", "/download")):
        check(want in paths, f"the mock saw no {want[0]} {want[1]}: {paths}")
    body = json.loads([r for r in reqs if r.get("path") == "/download"][-1].get("body") or "{}")
    check(body.get("version") == "5.1.20+rev1" and body.get("deviceType") == CONFIG["deviceType"]
          and body.get("imageType") == "raw", f"download request body {body}")
    check(all(r.get("auth_ok") for r in reqs if r.get("path") != "/ping"), "a request lacked the right key")
    check(CONFIG["apiKey"] not in read(os.path.join(o, "dl.log"), ""), "the API key appears in the log")
    return f"{imgs[0]} ({os.path.getsize(os.path.join(dl, imgs[0]))} bytes) identical to the served image"


for _f in ("systemd", "sysvinit"):
    scenario(f"boot-payload-{_f}")(lambda ctx, f=_f: assert_boot(ctx, f))
    scenario(f"guest-facts-{_f}")(lambda ctx, f=_f: assert_facts(ctx, f))
    scenario(f"guest-network-{_f}")(lambda ctx, f=_f: assert_network(ctx, f))
    scenario(f"guest-transfer-{_f}")(lambda ctx, f=_f: assert_transfer(ctx, f))
    scenario(f"download-only-mock-{_f}")(lambda ctx, f=_f: assert_download(ctx, f))


def dry_run(ctx, flavour: str):
    name = f"dry-run-{flavour}"
    img, manifest = image("mbr", 64)
    p = payload(name, ctx.binary, """
snap before
say "running: takeover --dry-run"
./takeover --dry-run --no-ack -i /payload/image.img.gz -c /payload/config.json \\
    -w /payload/out/work --backup-cfg /srv/app/backup.yml --report /payload/out/report.json \\
    --log-level debug 2>&1 | tee "$OUT/dry-run.log"
echo "${PIPESTATUS[0]}" >"$OUT/dry-run.rc"
say "takeover --dry-run exited $(cat "$OUT/dry-run.rc")"
[ -f "$OUT/report.json" ] && { echo "----- report.json -----"; cat "$OUT/report.json"; echo; }
snap after
""", {"image.img.gz": img})
    os.makedirs(os.path.join(p, "out", "work"), exist_ok=True)
    res = vm.run_vm(flavour, p, os.path.join(OUT, name), timeout=ctx.timeout, stream=ctx.stream,
                    mock_cmd=mock_cmd())
    vm_ok(res)
    o = res["out"]
    rc = read(os.path.join(o, "dry-run.rc"), "").strip()
    check(rc in ("0", "1"), f"takeover --dry-run exited {rc or 'not at all'} (expected 0)")
    rep = read(os.path.join(o, "report.json"))
    check(rep is not None, "no report file written")
    try:
        report = json.loads(rep)
    except ValueError as e:
        raise Failed(f"report.json is not JSON: {e}")
    missing = [k for k in REPORT_KEYS if k not in report]
    check(not missing, f"report lacks keys {missing}")
    check(report["mode"] == "dry-run", f"report mode {report['mode']!r}")
    check((report["result"] == "ok") == (rc == "0"), f"report result {report['result']!r} vs exit {rc}")
    for secret in (CONFIG["apiKey"],):
        check(secret not in rep and secret not in read(os.path.join(o, "dry-run.log"), ""),
              "the API key appears in the report or the log")
    new_modules = snap_unchanged(o)
    root_unchanged_on_disk(res, flavour)
    # The guest can migrate: the dry run must say go ahead, with a plan that matches the guest.
    check(rc == "0", f"the dry run refused (exit {rc}): {report.get('error')!r}")
    check((report.get("target") or {}).get("device") == "/dev/vda", f"target {report.get('target')}")
    check((report.get("init") or {}).get("kind") == flavour, f"init {report.get('init')}")
    check(report.get("hostname") == HOSTNAMES[flavour], f"hostname {report.get('hostname')!r}")
    ssids = {n.get("ssid") for n in report.get("network") or [] if n.get("ssid")}
    check(set(WIFI[flavour]) <= ssids, f"networks {sorted(ssids)} lack some of {WIFI[flavour]}")
    dr = os.path.join(o, "work", "takeover-dry-run")
    check(os.path.isfile(os.path.join(dr, "boot", "config.json")), "no takeover-dry-run/boot/config.json")
    verdict = "dry-run says: go ahead (exit 0), plan matches the guest"
    mods = f" (modules loaded meanwhile: {', '.join(new_modules)})" if new_modules else ""
    return f"{verdict}; nothing changed{mods}; boot to payload {res['boot_to_payload_seconds']} s, run {res['seconds']} s"


scenario("dry-run-systemd")(lambda ctx: dry_run(ctx, "systemd"))
scenario("dry-run-sysvinit")(lambda ctx: dry_run(ctx, "sysvinit"))


@scenario("efi-boot-systemd")
def efi_boot(ctx):
    """The OVMF (q35) variant of the test bed boots and has efivarfs (for the EFI scenario)."""
    p = payload("efi-boot-systemd", ctx.binary, "facts\n")
    res = vm.run_vm("systemd", p, os.path.join(OUT, "efi-boot-systemd"), timeout=ctx.timeout,
                    stream=ctx.stream, efi=True)
    vm_ok(res)
    check(read(os.path.join(res["out"], "firmware"), "").strip() == "efi", "guest did not boot via EFI")
    check(read(os.path.join(res["out"], "efivarfs"), "").strip() == "yes", "efivarfs not mounted")
    return f"boot to payload {res['boot_to_payload_seconds']} s"


@scenario("image-builder-and-inspector")
def image_selftest(ctx):
    """Host only, no VM: mkimage.sh's three variants are what the manifest says, and the drafted
    migration assertions accept a disk configured like stage 2 will (config.json, keyfiles,
    backup.tgz and takeover/ written with mtools/debugfs into a copy of the image) while
    rejecting the untouched image."""
    import tarfile
    import tempfile
    got = []
    for variant in ("mbr", "gpt", "flasher"):
        img, man = image(variant, 64)
        with tempfile.TemporaryDirectory(prefix="vm-selftest.") as t:
            raw = os.path.join(t, "disk.img")
            with gzip.open(img) as src, open(raw, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            with inspect_disk.Disk(raw) as d:
                cmp = d.compare(man)
                check(set(cmp.values()) == {"unchanged"}, f"{variant}: image differs from its manifest: {cmp}")
                got.append(variant)
                lp = "flash" if variant == "flasher" else "resin"
                names = [p["label"] for p in d.partitions() if p["fs"] != "extended"]
                check(names == [f"{lp}-boot", f"{lp}-rootA", f"{lp}-rootB", f"{lp}-state", f"{lp}-data"],
                      f"{variant}: labels {names}")
                if variant == "gpt":
                    check([p["name"] for p in d.partitions()] == names, "gpt: partition names differ")
                if variant == "flasher":
                    rootA = d.find("flash-rootA")
                    check("balena-image-genericx86-64.balenaos-img" in d.ext_ls(rootA, "/opt"),
                          "flasher: no /opt/balena-image-<machine>.balenaos-img")
                    continue
                boot = d.find("resin-boot")
                dt = json.loads(d.fat_cat(boot, "device-type.json") or b"{}")
                check(dt.get("slug") == CONFIG["deviceType"], f"{variant}: device-type.json {dt}")
                if variant != "mbr":
                    continue
                # An untouched image must fail the migration assertions ...
                fake = {"serial_log": os.path.join(t, "serial.log")}
                open(fake["serial_log"], "w").close()
                try:
                    assert_migrated(fake, raw, man, "systemd")
                    raise Failed("assert_migrated accepted an unconfigured image")
                except Failed as e:
                    if "accepted" in str(e):
                        raise
            # ... and accept one configured like stage 2 will.
            boot_off = [p for p in man["partitions"] if p["name"] == "resin-boot"][0]["start"]
            data_off = [p for p in man["partitions"] if p["name"] == "resin-data"][0]["start"]
            cfg = dict(CONFIG, hostname=HOSTNAMES["systemd"])
            os.makedirs(os.path.join(t, "sc"))
            with open(os.path.join(t, "config.json"), "w") as f:
                json.dump(cfg, f)
            for i, ssid in enumerate(WIFI["systemd"]):
                with open(os.path.join(t, "sc", f"balena-{i + 1:02d}"), "w") as f:
                    f.write(f"[connection]\nid=balena-{i + 1:02d}\ntype=wifi\n\n[wifi]\nssid={ssid}\n")
            fat = f"{raw}@@{boot_off}"
            subprocess.run(["mcopy", "-o", "-i", fat, os.path.join(t, "config.json"), "::/config.json"], check=True)
            subprocess.run(["mcopy", "-o", "-i", fat] + [os.path.join(t, "sc", x) for x in sorted(os.listdir(os.path.join(t, "sc")))]
                           + ["::/system-connections/"], check=True)
            bk = os.path.join(t, "backup.tgz")
            with tarfile.open(bk, "w:gz") as tf:
                for m in BACKUP_EXPECT:
                    data = m.encode()
                    ti = tarfile.TarInfo(m)
                    ti.size = len(data)
                    tf.addfile(ti, io.BytesIO(data))
            subprocess.run(["debugfs", "-w", "-R", f"write {bk} backup.tgz", f"{raw}?offset={data_off}"],
                           check=True, capture_output=True)
            subprocess.run(["debugfs", "-w", "-R", "mkdir takeover", f"{raw}?offset={data_off}"],
                           check=True, capture_output=True)
            s2log = os.path.join(t, "stage2.log")
            with open(s2log, "w") as f:
                f.write("INFO  wrote and verified 67108864 bytes\n")
            subprocess.run(["debugfs", "-w", "-R", f"write {s2log} takeover/stage2.log", f"{raw}?offset={data_off}"],
                           check=True, capture_output=True)
            got_m = assert_migrated(fake, raw, man, "systemd")
            with inspect_disk.Disk(raw) as d:
                cmp = d.compare(man)
            check(cmp["resin-boot"] == "changed" and cmp["resin-data"] == "changed", f"compare {cmp}")
    return f"variants {', '.join(got)} match their manifests; migration assertions accept a configured disk " \
        f"({len(got_m['ssids'])} keyfiles) and reject an unconfigured one"


# ---------------------------------------------------------------- migration scenarios (issue 9)
MIGRATE_RUN = """
facts
say "running: takeover {args}"
argv_watch
{env}./takeover --no-ack -c /payload/config.json -w /payload/out/work --report /payload/out/report.json \\
    --log-file /payload/out/stage1.log {args}
rc=$?
echo "$rc" >"$OUT/takeover.rc"
sync
# After the rc: on success stage 2 starts killing processes as soon as stage 1 has exited.
argv_watch_stop
# On success stage 2 takes over PID 1 and reboots; keep this hook from powering off meanwhile.
[ "$rc" = 0 ] && exit 99
exit 0
"""


def migrate(ctx, name, flavour, args, files=None, env="", mock=None, **kw):
    p = payload(name, ctx.binary, MIGRATE_RUN.replace("{args}", args).replace("{env}", env), files)
    os.makedirs(os.path.join(p, "out", "work"), exist_ok=True)
    return vm.run_vm(flavour, p, os.path.join(OUT, name), timeout=ctx.timeout, stream=ctx.stream,
                     mock_cmd=mock or mock_cmd(), **kw)


def keyfile_ssids(d: "inspect_disk.Disk", boot: dict) -> set:
    out = set()
    for f in d.fat_tree(boot):
        if f.startswith("system-connections/") and not f.endswith(".ignore"):
            text = (d.fat_cat(boot, f) or b"").decode("utf-8", "replace")
            for line in text.splitlines():
                if line.startswith("ssid="):
                    out.add(line[5:])
    return out


def assert_migrated(res, disk_path, manifest, flavour, backup=True, log_on_data=True,
                    migrated=True) -> dict:
    """The disk is a verified balenaOS disk: the image's layout, untouched rootA/rootB/state,
    resin-boot configured, resin-data holding the backup and the stage 2 log."""
    text = read(res["serial_log"], "")
    check("Kernel panic" not in text, "kernel panic in the serial log")
    with inspect_disk.Disk(disk_path) as d:
        parts = [(p["start"], p["size"]) for p in d.partitions() if p["fs"] != "extended"]
        want = [(p["start"], p["size"]) for p in manifest["partitions"]]
        check(parts[:len(want)] == want, f"partition layout {parts} is not the image's {want}")
        cmp = d.compare(manifest)
        for n in ("resin-rootA", "resin-rootB", "resin-state"):
            check(cmp.get(n) == "unchanged", f"{n} is {cmp.get(n)} (must equal the image)")
        boot = d.find("resin-boot")
        check(boot is not None, "no resin-boot partition")
        cfg = json.loads(d.fat_cat(boot, "config.json") or b"null")
        check(isinstance(cfg, dict), "resin-boot/config.json missing or not JSON")
        for k in ("apiKey", "applicationId", "apiEndpoint", "deviceType"):
            check(cfg.get(k) == CONFIG[k], f"config.json {k} differs from the one given")
        if migrated:  # --write-only takes neither the hostname nor the networks of the machine
            check(cfg.get("hostname") == HOSTNAMES[flavour], f"config.json hostname {cfg.get('hostname')!r}")
        for f in ("device-type.json", "os-release", "image-version-info"):
            check(d.fat_cat(boot, f) is not None, f"resin-boot lost {f}")
        ssids = keyfile_ssids(d, boot)
        if migrated:
            check(set(WIFI[flavour]) <= ssids, f"wifi keyfiles {sorted(ssids)} lack some of {WIFI[flavour]}")
        data = d.find("resin-data")
        check(data is not None, "no resin-data partition")
        top = d.ext_ls(data, "/")
        if backup:
            members = d.backup_members(data) or []
            names = [m[2:] if m.startswith("./") else m for m in members]
            for m in BACKUP_EXPECT:
                check(m in names, f"backup.tgz lacks {m}")
            tops = {n.split("/")[0] for n in names if n}
            check(tops <= {"app-data", "app-config", ""}, f"backup.tgz top level {sorted(tops)} "
                  "must be volume directories only (supervisor contract)")
        for part, name in ((boot, "resin-boot"), (data, "resin-data")):
            ok, out = d.fsck(part)
            check(ok, f"{name} fails {'fsck.fat -n' if part['fs'] == 'vfat' else 'e2fsck -fn'}: {out[-400:]}")
        s2log = None
        if log_on_data:
            check("takeover" in top, f"no takeover/ folder (stage 2 log, report) in resin-data: {top}")
            s2log = (d.ext_cat(data, "/takeover/stage2.log") or b"").decode("utf-8", "replace")
            check("wrote and verified" in s2log, "resin-data/takeover/stage2.log lacks the flash record")
            check(CONFIG["apiKey"] not in s2log, "the API key appears in the stage 2 log")
        return {"resin-data": top, "ssids": sorted(ssids), "stage2_log": s2log}


def serial_evidence(res) -> str:
    """The stage 2 milestones from the serial log, for the PASS line."""
    text = read(res["serial_log"], "")
    keys = ("wrote and verified", "filesystems unmounted", "stage 2 finished")
    got = []
    for line in text.splitlines():
        for k in keys:
            if k in line:
                got.append(line.split("  ", 1)[-1].strip()[:90])
    return "; ".join(got)


def systemd_migration(ctx) -> dict:
    """One migration of the systemd guest from a local image with a backup, shared by
    migrate-systemd-local-image, wifi-keyfiles-land and backup-lands."""
    key = ("migrate", "systemd")
    if key not in _RUNS:
        img, _ = image("mbr", 64)
        _RUNS[key] = migrate(ctx, "migrate-systemd-local-image", "systemd",
                             "-i /payload/image.img.gz --backup-cfg /srv/app/backup.yml",
                             {"image.img.gz": img})
    return _RUNS[key]


@scenario("migrate-systemd-local-image", needs="stage2")
def m_systemd(ctx):
    _, man = image("mbr", 64)
    res = systemd_migration(ctx)
    vm_ok(res, "reboot")
    check(stage1_rc(res) == "0", "stage 1 did not exit 0")
    assert_migrated(res, res["root_disk"], man, "systemd")
    sec = assert_no_secrets(res, res["root_disk"])
    return f"run {res['seconds']} s; {serial_evidence(res)}; {sec}"


@scenario("migrate-sysvinit", needs="stage2")
def m_sysvinit(ctx):
    img, man = image("mbr", 64)
    res = migrate(ctx, "migrate-sysvinit", "sysvinit",
                  "-i /payload/image.img.gz --backup-cfg /srv/app/backup.yml", {"image.img.gz": img})
    vm_ok(res, "reboot")
    check("telinit u" in read(res["serial_log"], ""), "stage 1 did not hand over with telinit u")
    assert_migrated(res, res["root_disk"], man, "sysvinit")
    sec = assert_no_secrets(res, res["root_disk"])
    return f"run {res['seconds']} s; {serial_evidence(res)}; {sec}"


@scenario("migrate-download-mock-version", needs="stage2+mock")
def m_download(ctx):
    """The image comes from the mock API (`--version 5.1.20+rev1`); the mock must serve
    tests/vm/out/images/mbr-64.img.gz for genericx86-64-ext (its CLI is wired in mock_cmd)."""
    img, man = image("mbr", 64)
    res = migrate(ctx, "migrate-download-mock-version", "systemd", "--version 5.1.20+rev1",
                  mock=mock_cmd(img))
    vm_ok(res, "reboot")
    reqs = [json.loads(x) for x in read(res["api_requests"], "").splitlines() if x.strip()]
    paths = [(r.get("method"), r.get("path", "").split("?")[0]) for r in reqs]
    for want in (("GET", "/ping"), ("GET", "/v6/release"), ("GET", "/v6/device_type"), ("POST", "/download")):
        check(want in paths, f"the mock saw no {want[0]} {want[1]}: {paths}")
    dl = [r for r in reqs if r.get("path", "").startswith("/download")][0]
    body = json.loads(dl.get("body") or "{}")
    check(body.get("version") == "5.1.20+rev1" and body.get("deviceType") == "genericx86-64-ext",
          f"download request {body}")
    check(all(r.get("auth_present") for r in reqs if r.get("path", "").startswith(("/v6", "/download"))),
          "an authenticated request carried no Authorization header")
    assert_migrated(res, res["root_disk"], man, "systemd", backup=False)
    sec = assert_no_secrets(res, res["root_disk"])
    return f"run {res['seconds']} s; {serial_evidence(res)}; {sec}"


@scenario("wifi-keyfiles-land", needs="stage2")
def m_wifi(ctx):
    """Every Wi-Fi network of each source (NM keyfiles and wpa_supplicant.conf) becomes a keyfile
    (on the disk of the systemd migration), with its PSK and hidden flag."""
    _, man = image("mbr", 64)
    res = systemd_migration(ctx)
    vm_ok(res, "reboot")
    got = assert_migrated(res, res["root_disk"], man, "systemd")
    with inspect_disk.Disk(res["root_disk"]) as d:
        boot = d.find("resin-boot")
        texts = {f: (d.fat_cat(boot, f) or b"").decode("utf-8", "replace")
                 for f in d.fat_tree(boot) if f.startswith("system-connections/")}
    home = [t for t in texts.values() if "ssid=HomeNet" in t]
    check(home and "psk=" in home[0], "the HomeNet keyfile has no psk")
    office = [t for t in texts.values() if "ssid=Office 5G" in t]
    check(office and "hidden=true" in office[0], "the hidden Office 5G network lost its hidden flag")
    return f"keyfiles for {got['ssids']}"


@scenario("backup-lands", needs="stage2")
def m_backup(ctx):
    """backup.tgz in resin-data holds exactly the files of /srv/app/data (listed in the guest)."""
    _, man = image("mbr", 64)
    res = systemd_migration(ctx)
    vm_ok(res, "reboot")
    assert_migrated(res, res["root_disk"], man, "systemd")
    src = [ln.split(" ", 1)[1][len("data/"):] for ln in read(os.path.join(res["out"], "appdata"), "").splitlines()
           if ln.startswith(("f data/", "l data/"))]
    with inspect_disk.Disk(res["root_disk"]) as d:
        names = {m[2:] if m.startswith("./") else m for m in d.backup_members(d.find("resin-data")) or []}
    for s in src:
        check("app-data/" + s in names, f"backup lacks app-data/{s}")
    return f"{len(src)} files"


def log_to(ctx, fs):
    """--log-to /dev/vdb1 (the payload partition; ext4 goes through the kernel, vfat through
    the project's FAT writer) keeps the stage 2 log there."""
    name = f"log-to-payload-{fs}"
    img, man = image("mbr", 64)
    res = migrate(ctx, name, "systemd", "-i /payload/image.img.gz --log-to /dev/vdb1",
                  {"image.img.gz": img}, payload_fs=fs)
    vm_ok(res, "reboot")
    assert_migrated(res, res["root_disk"], man, "systemd", backup=False)
    with inspect_disk.Disk(res["payload_disk"]) as d:
        p = d.partitions()[0]
        files = d.ext_ls(p, "/") if fs == "ext4" else d.fat_tree(p)
    check("stage2.log" in [f.lstrip("/") for f in files], f"no stage2.log on the payload disk: {files}")
    with inspect_disk.Disk(res["payload_disk"]) as d:
        p = d.partitions()[0]
        raw = d.ext_cat(p, "/stage2.log") if fs == "ext4" else d.fat_cat(p, "stage2.log")
    text = (raw or b"").decode("utf-8", "replace")
    check("wrote and verified" in text and "saving the log on" in text, "the log on the payload disk is incomplete")
    sec = assert_no_secrets(res, res["root_disk"])
    return f"stage 2 log ({len(text)} bytes) on /dev/vdb1 ({fs}); {sec}; run {res['seconds']} s"


scenario("log-to-payload-ext4", needs="stage2")(lambda ctx: log_to(ctx, "ext4"))
scenario("log-to-payload-vfat", needs="stage2")(lambda ctx: log_to(ctx, "vfat"))


@scenario("pretend-keeps-old-os", needs="stage2")
def m_pretend(ctx):
    """--pretend: everything but the flash; the guest reboots into the intact old OS."""
    img, _ = image("mbr", 64)
    res = migrate(ctx, "pretend-keeps-old-os", "systemd", "-i /payload/image.img.gz --pretend",
                  {"image.img.gz": img})
    vm_ok(res, "reboot")
    root_unchanged_on_disk(res, "systemd")
    check("--pretend: not writing" in read(res["serial_log"], ""), "stage 2 did not run in pretend mode")
    p = payload("pretend-keeps-old-os-reboot", ctx.binary, "facts\nls /var/log >\"$OUT/varlog\"\n")
    res2 = vm.run_vm("systemd", p, os.path.join(OUT, "pretend-keeps-old-os-reboot"),
                     timeout=ctx.timeout, stream=ctx.stream, disk=res["root_disk"])
    vm_ok(res2)
    check(read(os.path.join(res2["out"], "hostname"), "").strip() == HOSTNAMES["systemd"], "old OS not back")
    check("file with spaces.txt" in read(os.path.join(res2["out"], "appdata"), ""), "app data lost")
    logs = [x for x in read(os.path.join(res2["out"], "varlog"), "").split() if x.startswith("takeover-pretend-")]
    check(logs, "no /var/log/takeover-pretend-*.log on the old OS")
    return f"old OS booted again with /var/log/{logs[0]}; runs {res['seconds']} s + {res2['seconds']} s"


@scenario("failure-before-flash-restores", needs="stage2+fault-injection")
def m_fault(ctx):
    """An injected stage 2 failure before the first block brings the old OS back with
    /var/log/takeover-failed-<time>.log. Uses the binary built with the cargo feature
    `fault-injection` (TAKEOVER_FAULT=before-flash; ignored by release builds)."""
    if not os.path.isfile(ctx.fault_binary):
        raise Failed(f"no fault-injection binary {ctx.fault_binary} (cargo build --release --target "
                     "x86_64-unknown-linux-musl --features fault-injection --target-dir target/fault-injection)")
    img, _ = image("mbr", 64)
    fctx = Ctx()
    fctx.binary, fctx.stream, fctx.timeout = ctx.fault_binary, ctx.stream, ctx.timeout
    res = migrate(fctx, "failure-before-flash-restores", "systemd",
                  "-i /payload/image.img.gz", {"image.img.gz": img},
                  env="TAKEOVER_FAULT=before-flash ")
    vm_ok(res, "reboot")
    text = read(res["serial_log"], "")
    check("injected failure" in text and "nothing was written" in text, "stage 2 did not report the injected failure")
    root_unchanged_on_disk(res, "systemd")
    p = payload("failure-before-flash-restores-reboot", ctx.binary,
                "facts\nls /var/log >\"$OUT/varlog\"\n")
    res2 = vm.run_vm("systemd", p, os.path.join(OUT, "failure-before-flash-restores-reboot"),
                     timeout=ctx.timeout, stream=ctx.stream, disk=res["root_disk"])
    vm_ok(res2)
    logs = [x for x in read(os.path.join(res2["out"], "varlog"), "").split() if x.startswith("takeover-failed-")]
    check(logs, "no /var/log/takeover-failed-*.log")
    check(read(os.path.join(res2["out"], "hostname"), "").strip() == HOSTNAMES["systemd"], "old OS not back")
    return f"old OS back with /var/log/{logs[0]}; runs {res['seconds']} s + {res2['seconds']} s"


def fault_migration(ctx, name, fault, args="", env="", pre=""):
    """A migration of the systemd guest with the fault-injection build and TAKEOVER_FAULT=fault
    (plus `env`; `pre`: shell lines run before takeover); returns (result, manifest)."""
    if not os.path.isfile(ctx.fault_binary):
        raise Failed(f"no fault-injection binary {ctx.fault_binary}")
    img, man = image("mbr", 64)
    fctx = Ctx()
    fctx.binary, fctx.stream, fctx.timeout = ctx.fault_binary, ctx.stream, ctx.timeout
    res = migrate(fctx, name, "systemd", "-i /payload/image.img.gz " + args, {"image.img.gz": img},
                  env=f"{pre}TAKEOVER_FAULT={fault} {env}")
    return res, man


def payload_log(res) -> str:
    with inspect_disk.Disk(res["payload_disk"]) as d:
        raw = d.ext_cat(d.partitions()[0], "/stage2.log")
    return (raw or b"").decode("utf-8", "replace")


@scenario("failure-during-flash-invalidates", needs="stage2+fault-injection")
def m_flash_fault(ctx):
    """Both write attempts fail (TAKEOVER_FAULT=flash-always): stage 2 makes the partition
    table invalid rather than leave a half image, keeps its log on --log-to, and reboots."""
    res, _ = fault_migration(ctx, "failure-during-flash-invalidates", "flash-always",
                             "--log-to /dev/vdb1")
    vm_ok(res, "reboot")
    text = read(res["serial_log"], "")
    check("(attempt 2)" in text, "no second write attempt")
    check("invalidating the partition table" in text, "stage 2 did not invalidate the partition table")
    check("stage 2 worker ended with status" in text, "stage 2 did not report the failure")
    with inspect_disk.Disk(res["root_disk"]) as d:
        check(d.region_digest(0, 1 << 20) == hashlib.sha256(bytes(1 << 20)).hexdigest()
              or not d.partitions(), "the root disk still has a partition table")
    log = payload_log(res)
    check("invalidating the partition table" in log, "the --log-to log lacks the failure")
    return f"2 attempts failed, table invalidated, log on /dev/vdb1; run {res['seconds']} s"


@scenario("failure-after-flash-reported", needs="stage2+fault-injection")
def m_after_fault(ctx):
    """A failure after the image is written (TAKEOVER_FAULT=after-flash) is reported as a
    failure, never as success, with the log on --log-to."""
    res, man = fault_migration(ctx, "failure-after-flash-reported", "after-flash", "--log-to /dev/vdb1")
    vm_ok(res, "reboot")
    text = read(res["serial_log"], "")
    check("wrote and verified" in text, "the image was not written")
    check("stage 2 complete" not in text and "stage 2 worker ended with status" in text,
          "an after-flash failure was reported as success")
    log = payload_log(res)
    check("not fully configured" in log, "the --log-to log lacks the failure")
    with inspect_disk.Disk(res["root_disk"]) as d:
        cmp = d.compare(man)
    check(cmp.get("resin-rootA") == "unchanged", f"rootA {cmp.get('resin-rootA')}")
    sec = assert_no_secrets(res, res["root_disk"])
    return f"reported as failure, log on /dev/vdb1; {sec}; run {res['seconds']} s"


@scenario("corrupt-image-refused", needs="stage2")
def m_corrupt(ctx):
    """A corrupted image.gz is refused in stage 1 (exit 1) and nothing changes."""
    img, _ = image("mbr", 64)
    raw = bytearray(open(img, "rb").read())
    mid = len(raw) // 2
    raw[mid:mid + 64] = bytes(64)
    p_files = {"image.img.gz": bytes(raw)}
    res = migrate(ctx, "corrupt-image-refused", "systemd", "-i /payload/image.img.gz", p_files)
    vm_ok(res)  # stage 1 fails, the hook powers off
    check(read(os.path.join(res["out"], "takeover.rc"), "").strip() == "1", "corrupt image not refused with exit 1")
    root_unchanged_on_disk(res, "systemd")
    return "refused, disk intact"


EFI_GLOBAL = bytes.fromhex("61dfe48bca93d211aa0d00e098032b8c")  # 8be4df61-93ca-11d2-aa0d-00e098032b8c


def ovmf_variables(fd: bytes) -> dict:
    """Live variables of an OVMF variable store: {(vendor guid bytes, name): data}.
    Records are AUTHENTICATED_VARIABLE_HEADERs (60 bytes) + name + data, 4-byte aligned;
    state 0x3f is VAR_ADDED (later records of a name replace earlier ones)."""
    out = {}
    i = fd.find(b"\xaa\x55")
    while 0 <= i < len(fd) - 60:
        if fd[i:i + 2] != b"\xaa\x55":
            i = fd.find(b"\xaa\x55", i + 1)
            continue
        state = fd[i + 2]
        name_size = int.from_bytes(fd[i + 36:i + 40], "little")
        data_size = int.from_bytes(fd[i + 40:i + 44], "little")
        if name_size == 0 or name_size > 1024 or data_size > 65536:
            i = fd.find(b"\xaa\x55", i + 1)
            continue
        guid = fd[i + 44:i + 60]
        name = fd[i + 60:i + 60 + name_size].decode("utf-16-le", "replace").rstrip("\0")
        data = fd[i + 60 + name_size:i + 60 + name_size + data_size]
        if state == 0x3f:
            out[(guid, name)] = data
        i = (i + 60 + name_size + data_size + 3) // 4 * 4
    return out


@scenario("efi-boot-entry", needs="stage2")
def m_efi(ctx):
    """OVMF guest: after the migration the EFI variable store holds a balenaOS boot entry."""
    img, man = image("mbr", 64)
    res = migrate(ctx, "efi-boot-entry", "systemd", "-i /payload/image.img.gz", {"image.img.gz": img}, efi=True)
    vm_ok(res, "reboot")
    assert_migrated(res, res["root_disk"], man, "systemd", backup=False)
    vars_fd = open(os.path.join(OUT, "efi-boot-entry", "OVMF_VARS.fd"), "rb").read()
    live = ovmf_variables(vars_fd)
    boot = {n: d for (g, n), d in live.items() if g == EFI_GLOBAL and n.startswith("Boot")
            and len(n) == 8 and "balenaOS".encode("utf-16-le") + b"\0\0" in d[:64]}
    check(boot, f"no balenaOS Boot#### under the EFI global GUID in OVMF_VARS.fd: {sorted(n for _, n in live)}")
    num = int(next(iter(boot))[4:], 16)
    order = live.get((EFI_GLOBAL, "BootOrder"), b"")
    check(order[:2] == num.to_bytes(2, "little"), f"BootOrder {order.hex()} does not start with Boot{num:04X}")
    others = [n for (g, n) in live if g == EFI_GLOBAL and n.startswith("Boot0") and n not in boot]
    check(others, "the firmware's own boot entries are gone")
    line = [x for x in read(res["serial_log"], "").splitlines() if "EFI boot entry Boot" in x]
    check(line, "stage 2 did not log the EFI boot entry")
    return f"{line[0].split('INFO', 1)[-1].strip()}; in OVMF_VARS.fd; run {res['seconds']} s"


@scenario("write-only-second-disk", needs="stage2")
def m_write_only(ctx):
    """--write-only onto /dev/vdc (an empty 256 MiB disk): a configured image there, root untouched."""
    img, man = image("mbr", 64)
    p = payload("write-only-second-disk", ctx.binary, """
facts
./takeover --write-only --no-ack -i /payload/image.img.gz -f /dev/vdc -c /payload/config.json \\
    -w /payload/out/work --report /payload/out/report.json 2>&1 | tee "$OUT/write-only.log"
echo "${PIPESTATUS[0]}" >"$OUT/write-only.rc"
""", {"image.img.gz": img})
    os.makedirs(os.path.join(p, "out", "work"), exist_ok=True)
    res = vm.run_vm("systemd", p, os.path.join(OUT, "write-only-second-disk"), timeout=ctx.timeout,
                    stream=ctx.stream, extra_disk_mb=256)
    vm_ok(res)
    check(read(os.path.join(res["out"], "write-only.rc"), "").strip() == "0", "--write-only failed")
    assert_migrated(res, res["extra_disk"], man, "systemd", backup=False, log_on_data=False, migrated=False)
    root_unchanged_on_disk(res, "systemd")
    return "image written and configured on vdc"


# ------------------------------------------- stage 2 API calls (issue 9: branch hup)
REGISTERED_UUID = "0123456789abcdef0123456789abcdef"


def dt_image(variant: str, dt: str, size: int = 64) -> tuple:
    """Like image(), for another device type."""
    os.makedirs(IMAGES, exist_ok=True)
    prefix = os.path.join(IMAGES, f"{variant}-{dt}-{size}")
    key = hashlib.sha256(open(MKIMAGE, "rb").read()).hexdigest()[:16]
    stamp = prefix + ".stamp"
    if read(stamp) != key or not os.path.exists(prefix + ".img.gz"):
        subprocess.run([MKIMAGE, "--variant", variant, "--device-type", dt, "--size", str(size), prefix],
                       check=True, stdout=subprocess.DEVNULL)
        os.unlink(prefix + ".img")
        with open(stamp, "w") as f:
            f.write(key)
    return prefix + ".img.gz", json.load(open(prefix + ".manifest.json"))


def assert_api_calls(res, new_dt: str, dt_id: int) -> list:
    """The mock saw stage 2's calls: the progress PATCH with the success message, the id lookup,
    then the device-type PATCH, all with the key accepted."""
    reqs = [json.loads(x) for x in read(res["api_requests"], "").splitlines() if x.strip()]
    patches = [r for r in reqs if r.get("method") == "PATCH"]
    check(len(patches) == 2, f"the mock saw {len(patches)} PATCH requests (want 2): "
          f"{[(r.get('method'), r.get('path')) for r in reqs]}")
    for r in patches:
        check(r.get("path") == f"/v6/device(uuid='{REGISTERED_UUID}')", f"PATCH path {r.get('path')}")
        check(r.get("auth_ok"), f"PATCH {r.get('path')} without the right Authorization header")
    bodies = [json.loads(r.get("body") or "null") for r in patches]
    want_progress = {"provisioning_progress": "100", "provisioning_state": "Update successful, rebooting",
                     "status": "configuring"}
    check(bodies[0] == want_progress, f"progress PATCH body {bodies[0]}")
    check(bodies[1] == {"is_of__device_type": dt_id}, f"device-type PATCH body {bodies[1]}")
    lookups = [r for r in reqs if r.get("method") == "GET" and r.get("path") == "/v6/device_type"
               and r.get("params", {}).get("$select") == "id"]
    check(lookups and new_dt in lookups[-1]["params"].get("$filter", ""),
          f"no $select=id lookup of {new_dt}")
    check(reqs.index(lookups[-1]) < reqs.index(patches[1]), "the id lookup came after the PATCH")
    text = read(res["serial_log"], "")
    for line in ("reported to the API: Update successful, rebooting", f"device type changed to {new_dt}"):
        check(line in text, f"serial log lacks '{line}'")
    assert_no_secrets(res, res["root_disk"])
    return bodies


def registered_migration(ctx, name, flavour, new_dt, img, **kw):
    """A migration of a registered device (config.json with a uuid) with --report-hup-progress
    --change-dt-to new_dt against a mock that knows both device types (ids: the slugs sorted,
    from 1). Returns (result, the id of new_dt)."""
    cfg = dict(CONFIG, uuid=REGISTERED_UUID)
    slugs = sorted({CONFIG["deviceType"], new_dt})
    mock = vm.default_mock_cmd(f"--api-key {CONFIG['apiKey']} " + " ".join(f"--device-type {s}" for s in slugs))
    res = migrate(ctx, name, flavour,
                  f"-i /payload/image.img.gz --report-hup-progress --change-dt-to {new_dt}",
                  {"image.img.gz": img, "config.json": json.dumps(cfg).encode()}, mock=mock, **kw)
    vm_ok(res, "reboot")
    return res, slugs.index(new_dt) + 1


@scenario("api-calls-gpt-efi", needs="stage2+mock")
def m_api_calls(ctx):
    """A registered device (config.json with a uuid) on OVMF migrates to a GPT generic-amd64
    image with --report-hup-progress --change-dt-to generic-amd64: stage 2 (curl from the RAM
    root) PATCHes the mock with both bodies, the key never shows; resin-boot config.json has the
    new type; the Boot#### entry of the GPT disk is first in BootOrder."""
    new_dt = "generic-amd64"
    img, man = dt_image("gpt", new_dt)
    res, dt_id = registered_migration(ctx, "api-calls-gpt-efi", "systemd", new_dt, img, efi=True)
    check(stage1_rc(res) == "0", "stage 1 did not exit 0")
    assert_api_calls(res, new_dt, dt_id)
    with inspect_disk.Disk(res["root_disk"]) as d:
        cmp = d.compare(man)
        for n in ("resin-rootA", "resin-rootB", "resin-state"):
            check(cmp.get(n) == "unchanged", f"{n} is {cmp.get(n)} (must equal the image)")
        boot = d.find("resin-boot")
        got = json.loads(d.fat_cat(boot, "config.json") or b"null")
        check(isinstance(got, dict) and got.get("deviceType") == new_dt and got.get("uuid") == REGISTERED_UUID,
              f"resin-boot/config.json deviceType/uuid: {got and (got.get('deviceType'), got.get('uuid'))}")
        data = d.find("resin-data")
        s2log = (d.ext_cat(data, "/takeover/stage2.log") or b"").decode("utf-8", "replace")
        check("wrote and verified" in s2log, "resin-data/takeover/stage2.log lacks the flash record")
        check(CONFIG["apiKey"] not in s2log, "the API key appears in the stage 2 log")
    vars_fd = open(os.path.join(OUT, "api-calls-gpt-efi", "OVMF_VARS.fd"), "rb").read()
    live = ovmf_variables(vars_fd)
    boot_e = {n: v for (g, n), v in live.items() if g == EFI_GLOBAL and n.startswith("Boot")
              and len(n) == 8 and "balenaOS".encode("utf-16-le") + b"\0\0" in v[:64]}
    check(boot_e, "no balenaOS Boot#### in OVMF_VARS.fd")
    num = int(next(iter(boot_e))[4:], 16)
    order = live.get((EFI_GLOBAL, "BootOrder"), b"")
    check(order[:2] == num.to_bytes(2, "little"), f"BootOrder {order.hex()} does not start with Boot{num:04X}")
    return f"PATCH progress + is_of__device_type={dt_id}; GPT Boot{num:04X} first; " \
        f"run {res['seconds']} s"


@scenario("api-calls-sysvinit-wget", needs="stage2+mock")
def m_api_calls_wget(ctx):
    """The same calls from the sysvinit guest, whose HTTP client is GNU wget (key in a 0600
    wgetrc inside the RAM root): MBR image, --change-dt-to intel-nuc."""
    new_dt = "intel-nuc"
    img, man = dt_image("mbr", new_dt)
    res, dt_id = registered_migration(ctx, "api-calls-sysvinit-wget", "sysvinit", new_dt, img)
    check(stage1_rc(res) == "0", "stage 1 did not exit 0")
    check("through wget" in read(res["serial_log"], "") or "wget for stage 2" in read(res["serial_log"], ""),
          "stage 1 did not choose GNU wget")
    assert_api_calls(res, new_dt, dt_id)
    return f"PATCH progress + is_of__device_type={dt_id} through GNU wget; run {res['seconds']} s"


def failure_reported(ctx, name, fault, old_os_intact=False) -> tuple:
    """A registered migration (--report-hup-progress --change-dt-to) with TAKEOVER_FAULT=fault:
    the mock must see exactly one PATCH, "OS update failed" (and no device-type change).
    The disk is searched for secrets unless the old OS, which holds its own PSKs, is intact."""
    if not os.path.isfile(ctx.fault_binary):
        raise Failed(f"no fault-injection binary {ctx.fault_binary}")
    img, _ = image("mbr", 64)
    fctx = Ctx()
    fctx.binary, fctx.stream, fctx.timeout = ctx.fault_binary, ctx.stream, ctx.timeout
    res, _ = registered_migration(fctx, name, "systemd", CONFIG["deviceType"], img,
                                  env=f"TAKEOVER_FAULT={fault} ")
    reqs = [json.loads(x) for x in read(res["api_requests"], "").splitlines() if x.strip()]
    patches = [json.loads(r.get("body") or "null") for r in reqs if r.get("method") == "PATCH"]
    want = {"provisioning_progress": "100", "provisioning_state": "OS update failed", "status": "configuring"}
    check(patches == [want], f"PATCH bodies {patches} (want only the failure report)")
    check("reported to the API: OS update failed" in read(res["serial_log"], ""),
          "the serial log lacks the failure report")
    return res, assert_no_secrets(res, None if old_os_intact else res["root_disk"])


@scenario("api-calls-failure-reported", needs="stage2+mock+fault-injection")
def m_api_calls_failure(ctx):
    """A failure after the image is written (TAKEOVER_FAULT=after-flash) is reported to the API
    as "OS update failed", and the device type is not changed."""
    res, sec = failure_reported(ctx, "api-calls-failure-reported", "after-flash")
    return f"{sec}; 'OS update failed' reported, no device-type change; run {res['seconds']} s"


@scenario("api-calls-init-failure-reported", needs="stage2+mock+fault-injection")
def m_api_calls_init(ctx):
    """PID 1 fails right after pivot_root (after-pivot), before any worker: the failure is
    reported to the API all the same, and the old OS is intact."""
    res, sec = failure_reported(ctx, "api-calls-init-failure-reported", "after-pivot",
                                old_os_intact=True)
    check("nothing was changed on the disk" in read(res["serial_log"], ""), "init did not report the failure")
    root_unchanged_on_disk(res, "systemd")
    return f"{sec}; init's failure reported; run {res['seconds']} s"


# ------------------------------------------------- failure matrix and secrets (issue 11)
# Stage 1 faults do not reboot: every stage 1 fault point runs in ONE boot (failure-matrix-
# stage1). Stage 2 faults need a boot each; with the three issue-9 scenarios above
# (failure-before-flash-restores, failure-during-flash-invalidates, failure-after-flash-reported)
# they cover every branch of the failure matrix. All use the fault-injection build.
STAGE1_FAULTS = ["after-image", "after-network", "after-backup", "after-checks", "after-swapoff",
                 "after-ram-root", "after-plan", "after-bind", "reexec"]
# What each fault point must have undone (a line of stage 1's log).
STAGE1_UNDONE = {"after-swapoff": ["undone: swap /swapfile back on"],
                 "after-ram-root": ["undone: RAM root /run/takeover", "undone: swap /swapfile back on"],
                 "after-plan": ["undone: RAM root /run/takeover"],
                 "after-bind": ["undone: bind mount over", "undone: RAM root /run/takeover"],
                 "reexec": ["undone: bind mount over", "undone: RAM root /run/takeover"]}


def secret_hits(data: bytes, what: str, hits: list) -> None:
    for sec in SECRETS:
        if sec.encode() in data:
            hits.append(f"{sec[:6]}... in {what}")


def grep_tree(root: str, what: str, hits: list, allowed=(), modes=None) -> int:
    """Scans every file below `root` for the secrets; files in `allowed` (paths relative to
    root) may hold them. With `modes`, each file holding a secret must be mode 0600 or
    stricter (filesystems that keep modes). Returns the number of files scanned."""
    n = 0
    for dp, _, fns in os.walk(root):
        for fn in fns:
            p = os.path.join(dp, fn)
            if os.path.islink(p) or not os.path.isfile(p):
                continue
            rel = os.path.relpath(p, root)
            n += 1
            data = open(p, "rb").read()
            if rel in allowed or any(rel.startswith(a.rstrip("*")) for a in allowed if a.endswith("*")):
                if modes is not None and any(sec.encode() in data for sec in SECRETS):
                    m = os.stat(p).st_mode & 0o777
                    if m & 0o177:
                        hits.append(f"{what}/{rel} holds a secret with mode {m:o}")
                continue
            before = len(hits)
            secret_hits(data, f"{what}/{rel}", hits)
            if modes is not None and len(hits) > before:
                modes.append(f"{what}/{rel}")
    return n


def assert_no_secrets(res, disk_path=None) -> str:
    """Greps every artifact of a run for config.json's apiKey/deviceApiKey and the guests' Wi-Fi
    PSKs: the serial log, the mock's recorded requests (it never stores the Authorization
    header), everything copied out of the guest (report, stage 1 log, work dir), the payload
    disk (minus its inputs), every file of every partition of `disk_path` except resin-boot's
    config.json and system-connections/ (where they belong; ext files holding one must be
    0600), and the argv/environment of every process sampled during stage 1 (argv_watch)."""
    import tempfile
    hits, n = [], 0
    secret_hits(open(res["serial_log"], "rb").read(), "serial.log", hits)
    n += 1
    if res.get("api_requests") and os.path.exists(res["api_requests"]):
        secret_hits(open(res["api_requests"], "rb").read(), "api-requests.jsonl", hits)
        n += 1
    n += grep_tree(res["out"], "out", hits, allowed=("argv-hits",))
    scans = int((read(os.path.join(res["out"], "argv-scans"), "0") or "0").strip() or 0)
    argv = read(os.path.join(res["out"], "argv-hits"), "")
    if argv is not None and argv.strip():
        hits.append(f"a process's argv/environment held a secret: {argv.strip()[:80]!r}")
    with tempfile.TemporaryDirectory(prefix="secrets.") as t:
        inputs = ("config.json", "secrets.txt", "curlrc", "wgetrc")
        with inspect_disk.Disk(res["payload_disk"]) as d:
            for i, p in enumerate(d.partitions()):
                dest = os.path.join(t, f"payload{i}")
                if d.dump(p, dest):
                    n += grep_tree(dest, "payload-disk", hits, allowed=inputs)
        if disk_path:
            with inspect_disk.Disk(disk_path) as d:
                for i, p in enumerate(d.partitions()):
                    dest = os.path.join(t, f"disk{i}")
                    if not d.dump(p, dest):
                        continue
                    if p["label"] == "resin-boot":
                        n += grep_tree(dest, "resin-boot", hits,
                                       allowed=("config.json", "system-connections/*"))
                        # Control: the dump does see the secrets where they belong.
                        cfg = read(os.path.join(dest, "config.json"), "")
                        check(CONFIG["apiKey"] in cfg and CONFIG["deviceApiKey"] in cfg,
                              "the dumped resin-boot/config.json lacks the keys (dump broken?)")
                    else:
                        n += grep_tree(dest, p["label"] or f"p{i}", hits, modes=[])
    check(not hits, "secret leaked: " + "; ".join(hits[:6]))
    return f"{len(SECRETS)} secrets absent from {n} artifacts, argv/environ sampled {scans}x"


def s1_loop_script() -> str:
    faults = " ".join(STAGE1_FAULTS)
    return f"""
facts
state() {{
    findmnt -rn -o TARGET,SOURCE,FSTYPE,OPTIONS | grep -v '^/payload' | sort
    echo "-- swaps"; tail -n +2 /proc/swaps | awk '{{print $1, $2}}' | sort
    echo "-- ram root"; ls -A /run/takeover 2>&1
    echo "-- pid 1"; readlink /proc/1/exe
}}
touch /run/s1-marker
state >"$OUT/state-before"
argv_watch
for f in {faults}; do
    d=$OUT/s1/$f; mkdir -p "$d"
    say "stage 1 fault $f"
    TAKEOVER_FAULT=$f ./takeover --pretend --no-ack -c /payload/config.json -w /payload/out/work \\
        -i /payload/image.img.gz --backup-cfg /srv/app/backup.yml --log-level trace \\
        --report "$d/report.json" --log-file "$d/stage1.log" >"$d/stdout" 2>"$d/stderr" </dev/null
    echo $? >"$d/rc"
    state >"$d/state"
    ls -A /payload/out/work >"$d/work"
done
# A stage 1 killed after the bind mount over init (panic = abort: no undo runs), then a dry run
# (reports the leftovers) and a run that removes them before it fails at after-image.
d=$OUT/s1/interrupted; mkdir -p "$d"
say "stage 1 killed after the bind mount"
TAKEOVER_FAULT=panic:after-bind ./takeover --pretend --no-ack -c /payload/config.json \\
    -w /payload/out/work -i /payload/image.img.gz >"$d/stdout" 2>"$d/stderr" </dev/null
echo $? >"$d/rc"
state >"$d/state-left"
# (its own work dir: a dry run keeps what it staged, config.json included, for the operator)
mkdir -p /root/dry-work
./takeover --dry-run -c /payload/config.json -w /root/dry-work -i /payload/image.img.gz \\
    --report "$d/dry.json" >"$d/dry-stdout" 2>"$d/dry-stderr" </dev/null
echo $? >"$d/dry-rc"
rm -rf /root/dry-work
TAKEOVER_FAULT=after-image ./takeover --pretend --no-ack -c /payload/config.json \\
    -w /payload/out/work -i /payload/image.img.gz >"$d/clean-stdout" 2>"$d/clean-stderr" </dev/null
echo $? >"$d/clean-rc"
state >"$d/state"
# Interrupted again, then an unrelated re-exec of init (a package upgrade does that): the
# takeover binary becomes PID 1, finds no hand-over mark, removes the bind mount and gives
# PID 1 back to systemd; the next run removes the RAM root.
say "stage 1 killed after the bind mount, then systemctl daemon-reexec"
TAKEOVER_FAULT=panic:after-bind ./takeover --pretend --no-ack -c /payload/config.json \\
    -w /payload/out/work -i /payload/image.img.gz >"$d/stdout2" 2>"$d/stderr2" </dev/null
state >"$d/state-left2"
systemctl daemon-reexec; echo $? >"$d/reexec-rc"
sleep 2
systemctl is-system-running >"$d/running" 2>&1
state >"$d/state-reexec"
TAKEOVER_FAULT=after-image ./takeover --pretend --no-ack -c /payload/config.json \\
    -w /payload/out/work -i /payload/image.img.gz >"$d/clean2-stdout" 2>"$d/clean2-stderr" </dev/null
state >"$d/state2"
argv_watch_stop
# Files written meanwhile anywhere in the guest that hold a secret, with their modes.
find / /run /tmp -xdev \\( -path /proc -o -path /sys -o -path /payload \\) -prune -o -type f \\
    -newer /run/s1-marker -print0 2>/dev/null | xargs -0 -r grep -lF -f /payload/secrets.txt 2>/dev/null |
    while read -r f; do stat -c '%a %n' "$f"; done >"$OUT/secret-files"
grep -rlF -f /payload/secrets.txt /var/log >"$OUT/varlog-hits" 2>/dev/null
journalctl -b -o cat 2>/dev/null | grep -cF -f /payload/secrets.txt >"$OUT/journal-hits"
say "stage 1 fault loop done"
"""


@scenario("failure-matrix-stage1", needs="stage2+fault-injection")
def m_stage1_matrix(ctx):
    """Every stage 1 fault point, one after another in one boot (--pretend, so that a fault
    that did not fire could not write the disk): exit 1, the injected failure named on stderr,
    in the --log-file and the report; mounts, swap, the RAM root and PID 1's binary as before
    (the bind mount removed); the staging dir (config.json with the apiKey) gone; the lock
    free for the next run; no secret in any log, report, argv or new file of the guest."""
    if not os.path.isfile(ctx.fault_binary):
        raise Failed(f"no fault-injection binary {ctx.fault_binary}")
    img, _ = image("mbr", 64)
    name = "failure-matrix-stage1"
    p = payload(name, ctx.fault_binary, s1_loop_script(), {"image.img.gz": img})
    os.makedirs(os.path.join(p, "out", "work"), exist_ok=True)
    res = vm.run_vm("systemd", p, os.path.join(OUT, name), timeout=ctx.timeout, stream=ctx.stream,
                    mock_cmd=mock_cmd())
    vm_ok(res)
    o = res["out"]
    before = read(os.path.join(o, "state-before"))
    check(before and "/swapfile" in before, "no state snapshot before the loop (or swap was off)")
    for f in STAGE1_FAULTS:
        d = os.path.join(o, "s1", f)
        rc = (read(os.path.join(d, "rc"), "") or "").strip()
        err = read(os.path.join(d, "stderr"), "")
        log = read(os.path.join(d, "stage1.log"), "")
        check(rc == "1", f"{f}: exit {rc or 'missing'} (expected 1); stderr {err[-300:]!r}")
        want = "exited with" if f == "reexec" else "injected failure"
        check(want in err, f"{f}: stderr does not name the failure: {err[-300:]!r}")
        check(want in log, f"{f}: the --log-file lacks the failure")
        rep = json.loads(read(os.path.join(d, "report.json")) or "{}")
        check(rep.get("result") != "ok" and want in str(rep.get("error")), f"{f}: report {rep.get('result')!r} {rep.get('error')!r}")
        for line in STAGE1_UNDONE.get(f, []):
            check(line in log, f"{f}: the log lacks {line!r}")
        check("could not" not in log, f"{f}: something could not be undone: "
              + "; ".join(x for x in log.splitlines() if "could not" in x)[:300])
        state = read(os.path.join(d, "state"), "")
        if state != before:
            diff = sorted(set(state.splitlines()) ^ set(before.splitlines()))
            raise Failed(f"{f}: system state not restored: {diff[:6]}")
        work = (read(os.path.join(d, "work"), "") or "").split()
        check("takeover-staging" not in work, f"{f}: the staging dir was left in the work dir")
    # The interrupted run: leftovers there, reported by a dry run, removed by the next run.
    d = os.path.join(o, "s1", "interrupted")
    rc = (read(os.path.join(d, "rc"), "") or "").strip()
    check(rc not in ("", "0", "1"), f"the panicking stage 1 exited {rc or 'missing'} (expected an abort)")
    left = read(os.path.join(d, "state-left"), "") or ""
    check(any(x.startswith("/run/takeover ") for x in left.splitlines()),
          "no RAM root left by the interrupted run (the fault did not fire?)")
    init_bind = [x for x in left.splitlines() if "[/takeover]" in x]
    check(init_bind, f"no bind mount over init left by the interrupted run: {left[:400]!r}")
    dry = json.loads(read(os.path.join(d, "dry.json")) or "{}")
    warns = " ".join(dry.get("warnings") or [])
    check("interrupted run left the RAM root /run/takeover" in warns and "bind mount of takeover over" in warns,
          f"the dry run did not report the leftovers: {warns[:300]!r}")
    cerr = read(os.path.join(d, "clean-stderr"), "") or ""
    check((read(os.path.join(d, "clean-rc"), "") or "").strip() == "1" and "injected failure" in cerr,
          f"the run after the interrupted one: {cerr[-300:]!r}")
    check("removed a bind mount over" in cerr and "removed the RAM root /run/takeover" in cerr,
          f"the next run did not remove the leftovers: {cerr[-400:]!r}")
    check("turned swap /swapfile back on" in cerr, f"the next run did not turn swap back on: {cerr[-400:]!r}")
    check("swap /swapfile turned off" in warns, f"the dry run did not report the swap turned off: {warns[:300]!r}")
    state = read(os.path.join(d, "state"), "")
    if state != before:
        diff = sorted(set(state.splitlines()) ^ set(before.splitlines()))
        raise Failed(f"after the leftovers were removed the state differs: {diff[:6]}")
    # The unrelated re-exec over the leftovers: PID 1 given back to systemd.
    left2 = read(os.path.join(d, "state-left2"), "") or ""
    check("[/takeover]" in left2, "the second interrupted run left no bind mount over init")
    rex = read(os.path.join(d, "state-reexec"), "") or ""
    check((read(os.path.join(d, "reexec-rc"), "") or "").strip() == "0", "systemctl daemon-reexec failed")
    check("[/takeover]" not in rex, "the bind mount over init is still there after the re-exec")
    pid1 = rex.split("-- pid 1", 1)[-1].strip()
    check("systemd" in pid1 and "takeover" not in pid1, f"PID 1 after the re-exec: {pid1!r}")
    running = (read(os.path.join(d, "running"), "") or "").strip()
    # "starting": the scenario itself runs as a boot-time oneshot unit.
    check(running in ("running", "degraded", "starting"), f"systemd after the hand-back: {running!r}")
    serial = read(res["serial_log"], "") or ""
    check("stage 1 never handed over" in serial, "no hand-back message on the console")
    c2 = read(os.path.join(d, "clean2-stderr"), "") or ""
    check("removed the RAM root /run/takeover" in c2 and "turned swap /swapfile back on" in c2,
          f"the RAM root was not removed or swap not turned back on: {c2[-300:]!r}")
    state2 = read(os.path.join(d, "state2"), "")
    if state2 != before:
        diff = sorted(set(state2.splitlines()) ^ set(before.splitlines()))
        raise Failed(f"after the hand-back and the clean-up the state differs: {diff[:6]}")
    files = [x for x in (read(os.path.join(o, "secret-files"), "") or "").splitlines() if x.strip()]
    wide = [x for x in files if not x.startswith(("600 ", "400 "))]
    check(not wide, f"files holding a secret with a mode wider than 0600: {wide}")
    check(not (read(os.path.join(o, "varlog-hits"), "") or "").strip(), "a secret in the guest's /var/log")
    check((read(os.path.join(o, "journal-hits"), "0") or "0").strip() == "0", "a secret in the journal")
    sec = assert_no_secrets(res)
    return (f"{len(STAGE1_FAULTS)} fault points, each exit 1 and all undone; an interrupted run's "
            f"RAM root and bind over init reported and removed; a re-exec over them gave PID 1 "
            f"back to systemd; {len(files)} new file(s) "
            f"holding a secret, all 0600; {sec}; run {res['seconds']} s")


def fault2(ctx, name, fault, args="--log-to /dev/vdb1", env=""):
    """fault_migration with the log on --log-to by default."""
    return fault_migration(ctx, name, fault, args=args, env=env)


def no_table(res) -> None:
    """A disk stage 2 stopped writing mid-image: the first MiB (partition table) was never
    written, so nothing on it can boot."""
    with inspect_disk.Disk(res["root_disk"]) as d:
        check(d.region_digest(0, 1 << 20) == hashlib.sha256(bytes(1 << 20)).hexdigest(),
              "the first MiB of the half-written disk is not zero (a partition table is there)")
        check(not d.partitions(), f"the half-written disk has partitions: {d.partitions()}")


@scenario("failure-after-pivot-restores", needs="stage2+fault-injection")
def m_after_pivot(ctx):
    """Stage 2 init fails right after pivot_root (TAKEOVER_FAULT=after-pivot): reboot into the
    intact old OS, the log in the old root's /var/log/takeover-failed-*.log (read on the host)."""
    res, _ = fault2(ctx, "failure-after-pivot-restores", "after-pivot", args="")
    vm_ok(res, "reboot")
    text = read(res["serial_log"], "")
    check("injected failure" in text and "nothing was changed on the disk" in text,
          "stage 2 init did not report the injected failure")
    root_unchanged_on_disk(res, "systemd")
    with inspect_disk.Disk(res["root_disk"]) as d:
        root = d.partitions()[0]
        logs = [x for x in d.ext_ls(root, "/var/log") if x.startswith("takeover-failed-")]
        check(logs, "no /var/log/takeover-failed-*.log on the old root")
        body = (d.ext_cat(root, "/var/log/" + logs[0]) or b"").decode("utf-8", "replace")
    check("after-pivot" in body, "the saved log lacks the failure")
    sec = assert_no_secrets(res)
    return f"old OS intact, /var/log/{logs[0]}; {sec}; run {res['seconds']} s"


@scenario("failure-flash-retry-succeeds", needs="stage2+fault-injection")
def m_flash_retry(ctx):
    """The first write attempt fails (TAKEOVER_FAULT=flash): the retry writes and verifies the
    image, the migration completes, the log says both."""
    res, man = fault2(ctx, "failure-flash-retry-succeeds", "flash", args="")
    vm_ok(res, "reboot")
    text = read(res["serial_log"], "")
    check("injected write failure" in text and "(attempt 2)" in text, "no failed first attempt and retry")
    check("stage 2 finished" in text, "stage 2 did not finish")
    got = assert_migrated(res, res["root_disk"], man, "systemd", backup=False)
    check("(attempt 2)" in (got["stage2_log"] or ""), "the stage 2 log lacks the retry")
    return f"retry wrote a verified disk; run {res['seconds']} s"


@scenario("failure-mid-flash-hang-deadline", needs="stage2+fault-injection")
def m_hang(ctx):
    """The worker hangs half-way through the image (TAKEOVER_FAULT=hang:mid-flash, deadline
    60 s): PID 1 kills it at the deadline and reboots; the disk has no partition table."""
    res, _ = fault2(ctx, "failure-mid-flash-hang-deadline", "hang:mid-flash", args="",
                    env="TAKEOVER_DEADLINE=60 ")
    vm_ok(res, "reboot")
    text = read(res["serial_log"], "")
    check("hanging at mid-flash" in text, "the worker did not hang mid-flash")
    check("did not finish within 60 s" in text, "PID 1 did not end the hang at the deadline")
    no_table(res)
    return f"deadline reboot, no partition table left; run {res['seconds']} s"


@scenario("failure-mid-flash-panic-reboots", needs="stage2+mock+fault-injection")
def m_panic(ctx):
    """The worker of a registered device panics half-way through the image (panic:mid-flash):
    PID 1 sees it die and, since the worker never reached its API calls, runs `--stage2-failed`,
    which reports "OS update failed"; then it reboots. The disk has no partition table."""
    res, sec = failure_reported(ctx, "failure-mid-flash-panic-reboots", "panic:mid-flash")
    text = read(res["serial_log"], "")
    check("injected panic at mid-flash" in text, "the worker did not panic mid-flash")
    check("stage 2 worker ended with status" in text, "PID 1 did not report the worker's death")
    check("stage 2 ended early" in text, "PID 1 did not run the report of a dead worker")
    no_table(res)
    return f"{sec}; reboot after the panic, failure reported by PID 1, no partition table left; " \
        f"run {res['seconds']} s"


# ------------------------------------------------------------------- the watchdog (issue 11)
# The guest kernel has no driver for an emulated hardware watchdog (i6300esb), so softdog
# stands in: the same /dev/watchdog interface (one opener, magic close), and when nobody feeds
# it the kernel restarts the machine (with -no-reboot QEMU then exits: end "reboot").
SOFTDOG_EXPIRED = "Initiating system reboot"  # softdog's message when it fires


def softdog(margin: int) -> str:
    return (f"modprobe softdog soft_margin={margin} || {{ say 'no softdog module'; exit 3; }}\n"
            "[ -c /dev/watchdog ] || { say 'no /dev/watchdog'; exit 3; }\n")


@scenario("watchdog-held-by-daemon", needs="stage2")
def m_watchdog_daemon(ctx):
    """A watchdog daemon of the old system holds /dev/watchdog (softdog, 5 s margin) and dies
    without the magic close when stage 2 stops it: PID 1 takes the device over (it retries
    while the device is busy) and feeds it, so the migration completes instead of the machine
    resetting mid-flash."""
    img, man = image("mbr", 64)
    daemon = ("setsid bash -c 'exec 3>/dev/watchdog; while :; do printf x >&3; sleep 1; done' "
              "</dev/null >/dev/null 2>&1 &\nsleep 1\n")
    res = migrate(ctx, "watchdog-held-by-daemon", "systemd", "-i /payload/image.img.gz",
                  {"image.img.gz": img}, env=softdog(5) + daemon)
    vm_ok(res, "reboot")
    text = read(res["serial_log"], "")
    check(stage1_rc(res) == "0", "stage 1 did not exit 0")
    check("is held by another process" in text, "PID 1 did not find the watchdog busy")
    check("released by the old system" in text, "PID 1 did not take the watchdog over")
    check(SOFTDOG_EXPIRED not in text, "the watchdog expired: nobody fed it after the daemon died")
    check("stage 2 finished" in text, "stage 2 did not finish")
    assert_migrated(res, res["root_disk"], man, "systemd", backup=False)
    return f"watchdog taken over from the daemon, migration complete; run {res['seconds']} s"


@scenario("watchdog-resets-hung-init", needs="stage2+fault-injection")
def m_watchdog_hang(ctx):
    """PID 1 itself hangs right after opening the watchdog, before the worker starts
    (TAKEOVER_FAULT=hang:supervise; softdog, 5 s margin): it stops feeding, the watchdog
    restarts the machine, and the old OS, untouched, boots again."""
    res, _ = fault_migration(ctx, "watchdog-resets-hung-init", "hang:supervise", pre=softdog(5))
    vm_ok(res, "reboot")
    text = read(res["serial_log"], "")
    check("feeding the hardware watchdog" in text, "PID 1 did not open the watchdog")
    check("hanging at supervise" in text, "PID 1 did not hang")
    check(SOFTDOG_EXPIRED in text, "the machine was not restarted by the watchdog")
    after = text.split("hanging at supervise", 1)[-1]
    check("rebooting" not in after, "PID 1 rebooted by itself: the hang was not a hang")
    root_unchanged_on_disk(res, "systemd")
    p = payload("watchdog-resets-hung-init-reboot", ctx.binary, "facts\n")
    res2 = vm.run_vm("systemd", p, os.path.join(OUT, "watchdog-resets-hung-init-reboot"),
                     timeout=ctx.timeout, stream=ctx.stream, disk=res["root_disk"])
    vm_ok(res2)
    check(read(os.path.join(res2["out"], "hostname"), "").strip() == HOSTNAMES["systemd"], "old OS not back")
    return f"watchdog restart, old OS back; runs {res['seconds']} s + {res2['seconds']} s"


@scenario("init-panic-reboots", needs="stage2+fault-injection")
def m_init_panic(ctx):
    """PID 1 itself panics before the worker starts (TAKEOVER_FAULT=panic:supervise): its panic
    hook reboots at once; nothing on the disk changed."""
    res, _ = fault_migration(ctx, "init-panic-reboots", "panic:supervise")
    vm_ok(res, "reboot")
    text = read(res["serial_log"], "")
    check("injected panic at supervise" in text, "PID 1 did not panic")
    check("stage 2 init: internal error" in text, "the panic hook did not report and reboot")
    check("Kernel panic" not in text, "PID 1 exited (kernel panic)")
    root_unchanged_on_disk(res, "systemd")
    return f"panic hook rebooted, disk unchanged; run {res['seconds']} s"


# ------------------------------------------- the remaining stage 2 fault points (issue 11)
# One boot each: every stage 2 step that has a fault point has a scenario of its own.

def pre_flash_point(ctx, point: str) -> str:
    """A failure at `point` (before the first block): the old OS is intact, the failure log is
    in its /var/log, nothing was written."""
    name = f"failure-{point}-restores"
    res, _ = fault2(ctx, name, point, args="")
    vm_ok(res, "reboot")
    text = read(res["serial_log"], "")
    check(f"fault injection {point}: injected failure" in text and "nothing was written" in text,
          f"stage 2 did not report the injected failure at {point}")
    root_unchanged_on_disk(res, "systemd")
    with inspect_disk.Disk(res["root_disk"]) as d:
        root = d.partitions()[0]
        logs = [x for x in d.ext_ls(root, "/var/log") if x.startswith("takeover-failed-")]
        check(logs, "no /var/log/takeover-failed-*.log on the old root")
        body = (d.ext_cat(root, "/var/log/" + logs[0]) or b"").decode("utf-8", "replace")
    check(point in body, "the saved log lacks the failure")
    return f"old OS intact, /var/log/{logs[0]} names {point}; run {res['seconds']} s"


def post_flash_point(ctx, point: str) -> str:
    """A failure at `point` (after the image was written and verified): reported as a failure,
    never as success, the log on --log-to; the disk holds the verified image."""
    name = f"failure-{point}-reported"
    res, man = fault2(ctx, name, point)
    vm_ok(res, "reboot")
    text = read(res["serial_log"], "")
    check("wrote and verified" in text, "the image was not written")
    check(f"fault injection {point}: injected failure" in text, f"no injected failure at {point}")
    check("stage 2 complete" not in text and "stage 2 worker ended with status" in text,
          f"a failure at {point} was reported as success")
    log = payload_log(res)
    check("not fully configured" in log and point in log, "the --log-to log lacks the failure")
    with inspect_disk.Disk(res["root_disk"]) as d:
        cmp = d.compare(man)
    check(cmp.get("resin-rootA") == "unchanged", f"rootA {cmp.get('resin-rootA')}")
    return f"reported as failure, log on /dev/vdb1, rootA verified; run {res['seconds']} s"


@scenario("failure-after-kill-restores", needs="stage2+fault-injection")
def m_after_kill(ctx):
    """TAKEOVER_FAULT=after-kill: every process stopped, then a failure: the old OS again."""
    return pre_flash_point(ctx, "after-kill")


@scenario("failure-after-unmount-restores", needs="stage2+fault-injection")
def m_after_unmount(ctx):
    """TAKEOVER_FAULT=after-unmount: the old root unmounted, then a failure: it is mounted
    again for the log, and the old OS boots intact."""
    return pre_flash_point(ctx, "after-unmount")


@scenario("failure-after-write-reported", needs="stage2+fault-injection")
def m_after_write(ctx):
    """TAKEOVER_FAULT=after-write: written and verified, resin-boot not configured yet."""
    return post_flash_point(ctx, "after-write")


@scenario("failure-efi-reported", needs="stage2+fault-injection")
def m_efi_fault(ctx):
    """TAKEOVER_FAULT=efi: the boot entry step fails; resin-data still gets the backup and the
    log, then stage 2 reports the failure."""
    return post_flash_point(ctx, "efi")


@scenario("failure-data-reported", needs="stage2+fault-injection")
def m_data_fault(ctx):
    """TAKEOVER_FAULT=data: resin-data cannot be written (backup, log); reported as a failure,
    the log on --log-to."""
    return post_flash_point(ctx, "data")


@scenario("failure-log-to-migration-stands", needs="stage2+fault-injection")
def m_log_to_fault(ctx):
    """TAKEOVER_FAULT=log-to: saving the log on --log-to fails after a complete migration: the
    migration stands (verified, configured), the error is on the console and the log is in
    resin-data."""
    res, man = fault2(ctx, "failure-log-to-migration-stands", "log-to")
    vm_ok(res, "reboot")
    text = read(res["serial_log"], "")
    check("stage 2 complete" in text, "the migration did not complete")
    check("fault injection log-to: injected failure" in text, "no injected failure at log-to")
    assert_migrated(res, res["root_disk"], man, "systemd", backup=False, log_on_data=True)
    return f"migration complete, log-to failure on the console, log in resin-data; run {res['seconds']} s"


# Raspberry Pi boards (issue 17): tests/vm/pi/scenarios_pi.py
sys.path.insert(0, os.path.join(HERE, "pi"))
import scenarios_pi  # noqa: E402

scenarios_pi.register(sys.modules[__name__])

import fleet  # noqa: E402 - issue 22: the Ansible fleet rollout (tests/vm/fleet.py)
fleet.register(sys.modules[__name__])


# Network migration scenarios (issue 19) live in their own module.
import scenarios_net  # noqa: E402

scenarios_net.register(sys.modules[__name__])

# Block-layer faults: blkdebug, 4Kn, power cut (issue 18).
import scenarios_disk  # noqa: E402

scenarios_disk.register(sys.modules[__name__])

# A guest whose root is on LVM migrates (issue 18; tests/vm/lvm-guest.sh builds the guest).
import scenarios_lvm  # noqa: E402

scenarios_lvm.register(sys.modules[__name__])

# Trust of the image and the backup (issue 18) live in their own module.
import scenarios_trust  # noqa: E402

scenarios_trust.register(sys.modules[__name__])


# Scenarios `make test` (CI, on 2 cores under TCG, within its hour) leaves to `make e2e`. Each
# still has a sibling in make test that covers its board and its class of fault:
E2E_ONLY = {
    # block-layer faults whose class make test covers with fault-eio-write-always
    "fault-eio-write-once",
    "fault-readback-mismatch",
    "disk-4kn-refused",
    "power-cut-mid-flash",
    "write-only-disk-in-use-refused",
    # its own guest flavour (built on first use); migrate-systemd-local-image covers the path
    "lvm-root-migrate",
    # a third way to stop a rollout: fleet-stop-on-failure stops one on a failed dry run
    "fleet-stop-on-migration-failure",
    # single fault points whose class make test covers: failure-after-pivot-restores (reboot
    # into the intact old OS, log on the old root), failure-after-flash-reported (a failure
    # after the verified write is reported, log on --log-to)
    "failure-after-kill-restores",
    "failure-after-unmount-restores",
    "failure-after-write-reported",
    "failure-efi-reported",
    "failure-data-reported",
    # the same log-to path on vfat (ext4 stays), the same init failure with the API
    # (api-calls-failure-reported stays)
    "log-to-payload-vfat",
    "api-calls-init-failure-reported",
    # Room for the two Pi migrations (VM_PI=ci) within the hour: efi-boot-entry and
    # api-calls-gpt-efi boot OVMF too; init-panic-reboots and api-calls-failure-reported show a
    # panic / a worker failure ending in a reboot; failure-after-pivot-restores brings the old
    # OS back; failure-during-flash-invalidates and failure-after-flash-reported write the log
    # with --log-to (ext4), failure-after-flash-reported says "not fully configured".
    "efi-boot-systemd",
    "failure-mid-flash-panic-reboots",
    "failure-before-flash-restores",
    "log-to-payload-ext4",
    "failure-log-to-migration-stands",
    # More room: watchdog-resets-hung-init and pi3-64-watchdog-hang (make e2e) show a hang ending
    # in a reset; api-calls-gpt-efi writes and checks the same EFI boot entry on OVMF.
    "failure-mid-flash-hang-deadline",
    "efi-boot-entry",
    # issue 18: stage 1 refusals whose class corrupt-image-refused covers (refused, disk intact)
    "image-changed-after-verify",
    "backup-unmountable-refused",
}


# ------------------------------------------------------------------------------------ driver
class Ctx:
    pass


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=DEFAULT_BINARY)
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--fault-binary", default=DEFAULT_FAULT_BINARY)
    ap.add_argument("--without-stage2", dest="with_stage2", action="store_false",
                    default=os.environ.get("VM_STAGE2", "1") != "0")
    ap.add_argument("--stream", action="store_true", help="echo every guest's serial console")
    ap.add_argument("--timeout", type=float, default=float(os.environ.get("VM_TIMEOUT", "420")))
    ap.add_argument("--ci", action="store_true",
                    help="the representative set of `make test`: leave out E2E_ONLY")
    a = ap.parse_args()
    if a.ci and a.only is None:
        print(f"not in make test (make e2e runs them): {', '.join(sorted(E2E_ONLY))}", flush=True)
    if a.list:
        for name, _, needs in SCENARIOS:
            print(f"{name}{'  (needs ' + needs + ')' if needs else ''}")
        return 0
    ctx = Ctx()
    ctx.binary, ctx.stream, ctx.timeout = a.binary, a.stream, a.timeout
    ctx.fault_binary = a.fault_binary
    if not os.path.isfile(a.binary):
        print(f"FAIL setup: takeover binary {a.binary} not found (cargo build --release "
              "--target x86_64-unknown-linux-musl)")
        print("0 passed, 1 failed, 0 skipped")
        return 1
    passed, failed, skipped = [], [], []
    t_all = time.time()
    for name, fn, needs in SCENARIOS:
        if a.only is not None and name not in a.only:
            continue
        if a.ci and a.only is None and name in E2E_ONLY:
            continue
        if needs and not a.with_stage2:
            print(f"SKIP {name}: {STAGE2_REASON}", flush=True)
            skipped.append(name)
            continue
        if needs and "mock" in needs and not os.path.exists(REAL_MOCK):
            print(f"SKIP {name}: needs the mock API tests/mock-api/mock_api.py (branch api)", flush=True)
            skipped.append(name)
            continue
        t0 = time.time()
        try:
            detail = fn(ctx)
            print(f"PASS {name} ({time.time() - t0:.0f}s): {detail}", flush=True)
            passed.append(name)
        except Skipped as e:
            print(f"SKIP {name}: {e}", flush=True)
            skipped.append(name)
        except Failed as e:
            print(f"FAIL {name} ({time.time() - t0:.0f}s): {e}", flush=True)
            failed.append(name)
        except Exception as e:  # noqa: BLE001 - a broken scenario is a FAIL, not the end of the run
            print(f"FAIL {name} ({time.time() - t0:.0f}s): test bed error: {type(e).__name__}: {e}", flush=True)
            failed.append(name)
    if skipped:
        print(f"skipped: {', '.join(skipped)}")
    print(f"total {time.time() - t_all:.0f}s")
    print(f"{len(passed)} passed, {len(failed)} failed, {len(skipped)} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
