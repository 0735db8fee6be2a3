#!/usr/bin/python3
"""`make demo BOARD=pi3` (or pi2): an emulated Raspberry Pi migrates itself with the `make
release` binary for its CPU, serial console streaming; then what landed on its SD card.

    tests/vm/pi/demo_pi.py [--board pi3|pi2]
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(HERE))
import scenarios as sc  # noqa: E402  (registers tests/vm/pi/scenarios_pi.py)
import scenarios_pi as pi  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--board", choices=sorted(pi.BOARDS), default="pi3")
    a = ap.parse_args()
    b = pi.BOARDS[a.board]
    ctx = sc.Ctx()
    ctx.stream, ctx.timeout = True, float(os.environ.get("VM_TIMEOUT", "900"))
    print(f"DEMO: the emulated {b['model']} migrates to a fake balenaOS {b['dt']} image with "
          f"{os.path.basename(pi.binary(a.board))}\nserial console follows\n", flush=True)
    try:
        res, detail = pi.migration(ctx, a.board, f"demo-{a.board}")
    except sc.Failed as e:
        print(f"\nNOT VERIFIED: {e}")
        return 1
    s = sc.inspect_disk.summary(res["root_disk"])
    s["config.json"] = sc.inspect_disk.redact(s.get("config.json"))
    print("\n" + "=" * 78 + "\nwhat landed on the SD card:")
    print(json.dumps(s, indent=1))
    print(f"\nVERIFIED ({pi.stage_times(res)}): {detail}\nRun directory: {os.path.dirname(res['serial_log'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
