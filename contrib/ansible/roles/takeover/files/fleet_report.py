#!/usr/bin/env python3
"""Fleet report of a takeover rollout: fleet_report.py REPORT_DIR

Reads what the playbook collected in REPORT_DIR on the controller:
  hosts/<host>.json       the role's record of phase 1 (arch, board, binary, uuid, dry run's exit)
  reports/<host>.json     takeover's JSON report of the dry run (takeover --dry-run --report)
  migrations/<host>.json  phase 2's state of the host (started, stage 2, online, failed + why)
and writes REPORT_DIR/fleet.csv and REPORT_DIR/fleet.md (one row per host, sorted by name), then
prints the Markdown table. Standard library only; no secret is read (config.json is not here).
"""
import csv
import glob
import json
import os
import sys

COLUMNS = ["host", "ready", "board", "arch", "os", "target_disk", "image", "ram_needed_mib",
           "ram_available_mib", "failing_checks", "error", "binary", "uuid", "migration",
           "migration_detail"]
MiB = 1 << 20


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def mib(n):
    return "" if not isinstance(n, (int, float)) else str(round(n / MiB))


def size(n):
    if not isinstance(n, (int, float)):
        return ""
    for unit, f in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", MiB)):
        if n >= f:
            return f"{n / f:.1f} {unit}"
    return f"{n} B"


def row(name, rec, rep, mig):
    rec, rep, mig = rec or {}, rep or {}, mig or {}
    dev = rep.get("device") or {}
    osr = rep.get("os") or {}
    tgt = rep.get("target") or {}
    img = rep.get("image") or {}
    ram = rep.get("ram") or {}
    rc = rec.get("dry_run_rc")
    rc = int(rc) if str(rc).lstrip("-").isdigit() else None
    if not rep:
        ready = "no report"
    elif rc == 0 and rep.get("result") == "ok":
        ready = "yes"
    else:
        ready = "no"
    failing = [f"{c.get('name')}: {c.get('detail') or ''}".strip()
               for c in rep.get("checks") or [] if c.get("status") == "fail"]
    error = rep.get("error") or ""
    if not rep and rec.get("dry_run_stderr"):
        error = " / ".join(rec["dry_run_stderr"])
    disk = tgt.get("device") or ""
    if disk and tgt.get("size_bytes"):
        disk += f" ({size(tgt['size_bytes'])})"
    image = " ".join(str(x) for x in (img.get("device_type"), img.get("version")) if x)
    if not image:
        image = os.path.basename(img.get("path") or "")
    return {
        "host": name, "ready": ready,
        "board": dev.get("model") or rec.get("board") or "",
        "arch": dev.get("arch") or rec.get("arch") or "",
        "os": osr.get("pretty_name") or "",
        "target_disk": disk, "image": image,
        "ram_needed_mib": mib(ram.get("required_bytes")),
        "ram_available_mib": mib(ram.get("available_bytes")),
        "failing_checks": "; ".join(failing), "error": error,
        "binary": rec.get("binary") or "", "uuid": rec.get("uuid") or "",
        "migration": mig.get("status") or ("not started" if ready == "yes" else "-"),
        "migration_detail": mig.get("detail") or "",
    }


def md_cell(v):
    return str(v).replace("|", "\\|").replace("\n", " ")


def build(d):
    names = set()
    for sub in ("hosts", "reports", "migrations"):
        for p in glob.glob(os.path.join(d, sub, "*.json")):
            base = os.path.basename(p)[:-5]
            if not base.endswith(".migrate"):
                names.add(base)
    rows = []
    for n in sorted(names):
        rows.append(row(n, load(os.path.join(d, "hosts", n + ".json")),
                        load(os.path.join(d, "reports", n + ".json")),
                        load(os.path.join(d, "migrations", n + ".json"))))
    with open(os.path.join(d, "fleet.csv.tmp"), "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    os.replace(os.path.join(d, "fleet.csv.tmp"), os.path.join(d, "fleet.csv"))
    ready = sum(r["ready"] == "yes" for r in rows)
    lines = [f"# Fleet report: {len(rows)} hosts, {ready} ready to migrate", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(md_cell(r[c]) for c in COLUMNS) + " |" for r in rows]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(d, "fleet.md.tmp"), "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(os.path.join(d, "fleet.md.tmp"), os.path.join(d, "fleet.md"))
    return text


def main(argv):
    if len(argv) != 2 or not os.path.isdir(argv[1]):
        sys.stderr.write("usage: fleet_report.py REPORT_DIR (the playbook's takeover_report_dir)\n")
        return 2
    sys.stdout.write(build(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
