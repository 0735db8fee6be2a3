#!/usr/bin/python3
"""`make demo`: one complete run on the systemd guest with the serial console streaming, then
what landed on the new boot and data partitions.

    tests/vm/demo.py [--binary PATH] [--mode migrate|dry-run]   (default: DEMO_MODE or migrate)

migrate (default): the guest runs the real takeover from a local image with a backup; stage 2
flashes its own disk and reboots; then the disk is inspected (partition table, what landed on
resin-boot and resin-data, the stage 2 log). dry-run: `takeover --dry-run` and the files stage 2
would write (<work-dir>/takeover-dry-run/).
"""
import argparse
import json
import os
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, HERE)
import inspect_disk  # noqa: E402
import run as vm  # noqa: E402
import scenarios as sc  # noqa: E402


def banner(text: str) -> None:
    print("\n" + "=" * 78 + "\n" + text + "\n" + "=" * 78, flush=True)


def tree(root: str) -> None:
    for dp, dns, fns in sorted(os.walk(root)):
        dns.sort()
        for fn in sorted(fns):
            p = os.path.join(dp, fn)
            print(f"    {os.path.relpath(p, root)}  ({os.path.getsize(p)} bytes)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=sc.DEFAULT_BINARY)
    ap.add_argument("--mode", choices=["dry-run", "migrate"], default=os.environ.get("DEMO_MODE", "migrate"))
    a = ap.parse_args()
    if not os.path.isfile(a.binary):
        print(f"demo: {a.binary} not found; build it with `make static`", file=sys.stderr)
        return 1
    img, manifest = sc.image("mbr", 64)
    out = os.path.join(sc.OUT, "demo")
    flags = ("-i /payload/image.img.gz -c /payload/config.json -w /payload/out/work "
             "--backup-cfg /srv/app/backup.yml --report /payload/out/report.json --no-ack")
    if a.mode == "dry-run":
        banner("DEMO (dry-run): boots the systemd guest, runs `takeover --dry-run` inside it and\n"
               "shows the plan and what stage 2 WOULD write to the new boot and data partitions.\n"
               f"In the guest, as root: ./takeover --dry-run {flags}")
        run_sh = f"""
facts
say "takeover --dry-run {flags}"
./takeover --dry-run {flags}
echo $? >"$OUT/takeover.rc"
say "takeover --dry-run exited $(cat "$OUT/takeover.rc")"
"""
    else:
        # The test bed's own instruments (argv_watch, sync) stay out of the demo: once stage 1
        # exits, stage 2 pivots the root of every process to the RAM root, where a command after
        # takeover (rm, tr, sync) no longer exists. Only shell builtins run after takeover.
        cmd = ("./takeover -c /payload/config.json -i /payload/image.img.gz "
               "--backup-cfg /srv/app/backup.yml -w /payload/out/work "
               "--report /payload/out/report.json --log-file /payload/out/stage1.log --no-ack")
        banner("DEMO (migrate): the systemd guest migrates itself to the fake balenaOS image.\n"
               f"In the guest, as root: {cmd}")
        run_sh = f"""
facts
say "running: {cmd}"
{cmd}
rc=$?
echo "$rc" >"$OUT/takeover.rc"
# On success stage 2 takes over PID 1 and reboots; keep the hook from powering off meanwhile.
[ "$rc" = 0 ] && exit 99
exit 0
"""
    p = sc.payload("demo", a.binary, run_sh, {"image.img.gz": img})
    os.makedirs(os.path.join(p, "out", "work"), exist_ok=True)
    print(f"image: {img} ({manifest['device_type']}, balenaOS {manifest['version']}, "
          f"{manifest['size_bytes'] >> 20} MiB raw)\nserial console follows\n", flush=True)
    res = vm.run_vm("systemd", p, out, timeout=float(os.environ.get("VM_TIMEOUT", "420")),
                    stream=True, mock_cmd=sc.mock_cmd())
    banner(f"guest ended: {res['end']} after {res['seconds']} s "
           f"(payload started {res['boot_to_payload_seconds']} s after power-on)")
    o = res["out"]
    rc = sc.read(os.path.join(o, "takeover.rc"), "?").strip()
    rep = sc.read(os.path.join(o, "report.json"))
    print(f"takeover exit status: {rc}")
    if rep:
        print("report (--report):")
        print(json.dumps(json.loads(rep), indent=1))
    if a.mode == "dry-run":
        dr = os.path.join(o, "work", "takeover-dry-run")
        if os.path.isdir(dr):
            banner("what stage 2 would write (takeover-dry-run/):")
            tree(dr)
            cfg = os.path.join(dr, "boot", "config.json")
            if os.path.isfile(cfg):
                print("  boot/config.json (keys redacted):")
                print("   ", json.dumps(inspect_disk.redact(json.load(open(cfg)))))
            bk = os.path.join(dr, "data", "backup.tgz")
            if os.path.isfile(bk):
                with tarfile.open(bk) as t:
                    print("  data/backup.tgz members:")
                    for m in t.getmembers():
                        print(f"    {m.name}")
        else:
            print("(no takeover-dry-run/ directory: the dry-run did not get that far)")
        print(f"\nA dry-run must leave the guest unchanged (`make e2e` checks that: dry-run-systemd).\n"
              f"Run directory: {out}")
        return 0 if rc in ("0", "1") and res["end"] == "poweroff" else 1
    banner("what landed on the guest's disk:")
    s = inspect_disk.summary(res["root_disk"], manifest)
    s["config.json"] = inspect_disk.redact(s.get("config.json"))
    print(json.dumps(s, indent=1))
    with inspect_disk.Disk(res["root_disk"]) as d:
        boot, data = d.find("resin-boot"), d.find("resin-data")
        if boot:
            print("\nresin-boot files:")
            for f in d.fat_tree(boot):
                print(f"    {f}")
        if data:
            print("resin-data top level:", ", ".join(d.ext_ls(data, "/")))
            members = d.backup_members(data) or []
            print(f"resin-data/backup.tgz: {len(members)} members")
            log = (d.ext_cat(data, "/takeover/stage2.log") or b"").decode("utf-8", "replace")
            if log:
                print("resin-data/takeover/stage2.log (last lines):")
                for line in log.splitlines()[-8:]:
                    print(f"    {line}")
    try:
        sc.assert_migrated(res, res["root_disk"], manifest, "systemd")
        verdict = "VERIFIED: the disk is the image's layout, configured, with backup and log"
    except sc.Failed as e:
        verdict = f"NOT VERIFIED: {e}"
    banner(verdict + f"\nRun directory: {out}")
    return 0 if res["end"] == "reboot" and verdict.startswith("VERIFIED") else 1


if __name__ == "__main__":
    sys.exit(main())
