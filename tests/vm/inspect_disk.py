#!/usr/bin/python3
"""Read a disk image left by a VM run without mounting anything.

    tests/vm/inspect_disk.py DISK [--manifest IMAGE.manifest.json] [--json] [--files]

DISK may be qcow2 (converted with `qemu-img convert -O raw` to a temporary file) or raw.
Partition table via `sfdisk --json`, labels via `blkid -p --offset`, FAT files via mtools
(`-i disk@@OFFSET`), ext4 files via `debugfs 'disk?offset=N'`, backup.tgz members via tarfile,
partition digests compared with the image manifest written by tests/tools/mkimage.sh.
Also a library: Disk(path) with partitions(), find(label), fat_tree/fat_cat, ext_ls/ext_cat,
backup_members(), compare(manifest), fsck(part) (fsck.fat -n / e2fsck -fn).
"""
import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile

SECTOR = 512


def run(args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, **kw)


class Disk:
    def __init__(self, path: str):
        self.path = path
        self._tmp = None
        with open(path, "rb") as f:
            magic = f.read(4)
        if magic == b"QFI\xfb":
            self._tmp = tempfile.TemporaryDirectory(prefix="inspect.")
            self.raw = os.path.join(self._tmp.name, "disk.raw")
            subprocess.run(["qemu-img", "convert", "-O", "raw", path, self.raw], check=True)
        else:
            self.raw = path
        self._parts = None

    def close(self) -> None:
        if self._tmp:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    # ---------------------------------------------------------------- table and partitions
    def table(self) -> dict:
        r = run(["sfdisk", "--json", self.raw], text=True)
        if r.returncode != 0:
            return {}
        return json.loads(r.stdout).get("partitiontable", {})

    def layout(self) -> dict:
        """The partition table without file names: label, id and (start, size, type, bootable,
        name, uuid) of each entry, in sectors. Comparable between disks."""
        t = self.table()
        keys = ("start", "size", "type", "bootable", "name", "uuid")
        return {"label": t.get("label"), "id": t.get("id"),
                "partitions": [{k: p.get(k) for k in keys} for p in t.get("partitions", [])]}

    def partitions(self) -> list:
        if self._parts is not None:
            return self._parts
        t = self.table()
        parts = []
        for p in t.get("partitions", []):
            num = int(p["node"][len(self.raw):].lstrip("p") or 0)
            start, size = p["start"] * SECTOR, p["size"] * SECTOR
            entry = {"number": num, "start": start, "size": size, "type": p.get("type"),
                     "name": p.get("name"), "bootable": bool(p.get("bootable")),
                     "label": None, "fs": None}
            if p.get("type") in ("5", "f", "85"):
                entry["fs"] = "extended"
            else:
                b = run(["blkid", "-p", "-o", "export", "-O", str(start), "-S", str(size), self.raw], text=True)
                for line in b.stdout.splitlines():
                    k, _, v = line.partition("=")
                    if k == "LABEL":
                        entry["label"] = v
                    elif k == "TYPE":
                        entry["fs"] = v
            parts.append(entry)
        self._parts = parts
        return parts

    def find(self, label: str):
        """The partition whose filesystem label or GPT name is `label`."""
        for p in self.partitions():
            if p["label"] == label or p["name"] == label:
                return p
        return None

    def chunks(self, part: dict):
        """The bytes of a partition (or any {start, size} region), 8 MiB at a time."""
        with open(self.raw, "rb") as f:
            f.seek(part["start"])
            left = part["size"]
            while left:
                b = f.read(min(left, 8 << 20))
                if not b:
                    break
                yield b
                left -= len(b)

    def digest(self, part: dict) -> str:
        h = hashlib.sha256()
        for b in self.chunks(part):
            h.update(b)
        return h.hexdigest()

    def region_digest(self, start: int, size: int) -> str:
        return self.digest({"start": start, "size": size})

    # ---------------------------------------------------------------- FAT (mtools)
    def _fat(self, part: dict) -> str:
        return f"{self.raw}@@{part['start']}"

    def fat_tree(self, part: dict) -> list:
        """All paths (files and directories, '/'-separated, no leading '/') in a FAT partition."""
        r = run(["mdir", "-/", "-b", "-i", self._fat(part), "::/"], text=True)
        out = []
        for line in r.stdout.splitlines():
            line = line.strip()
            if line.startswith("::/"):
                line = line[3:]
            if line:
                out.append(line.rstrip("/"))
        return sorted(out)

    def fat_cat(self, part: dict, path: str):
        r = run(["mtype", "-i", self._fat(part), "::/" + path.lstrip("/")])
        return r.stdout if r.returncode == 0 else None

    # ---------------------------------------------------------------- ext4 (debugfs)
    def _ext(self, part: dict) -> str:
        return f"{self.raw}?offset={part['start']}"

    def ext_ls(self, part: dict, path: str = "/") -> list:
        r = run(["debugfs", "-R", f"ls -p {path}", self._ext(part)], text=True)
        names = []
        for line in r.stdout.splitlines():
            f = line.split("/")
            if len(f) >= 7 and f[5] not in (".", ".."):
                names.append(f[5])
        return sorted(names)

    def ext_cat(self, part: dict, path: str):
        if path not in ("/",) and os.path.basename(path) not in self.ext_ls(part, os.path.dirname(path) or "/"):
            return None
        r = run(["debugfs", "-R", f"cat {path}", self._ext(part)])
        return r.stdout if r.returncode == 0 else None

    def dump(self, part: dict, dest: str) -> bool:
        """Copies every file of a FAT or ext partition below `dest` (ext: with the inode's
        mode, so that file modes can be checked). False when the filesystem is unreadable."""
        os.makedirs(dest, exist_ok=True)
        if part["fs"] == "vfat":
            r = run(["mcopy", "-s", "-n", "-i", self._fat(part), "::/*", dest])
        elif part["fs"] in ("ext2", "ext3", "ext4"):
            r = run(["debugfs", "-R", f"rdump / {dest}", self._ext(part)])
        else:
            return False
        return r.returncode == 0

    def fsck(self, part: dict):
        """Checks a partition's filesystem without changing it: `fsck.fat -n` for vfat,
        `e2fsck -fn` for ext (on a copy of the partition). (ok, output)."""
        with tempfile.TemporaryDirectory(prefix="fsck.") as t:
            copy = os.path.join(t, "part.img")
            with open(copy, "wb") as dst:
                for b in self.chunks(part):
                    dst.write(b)
            if part["fs"] == "vfat":
                r = run(["fsck.fat", "-n", copy], text=True)
            elif part["fs"] in ("ext2", "ext3", "ext4"):
                r = run(["e2fsck", "-fn", copy], text=True)
            else:
                return False, f"no checker for filesystem {part['fs']!r}"
            return r.returncode == 0, (r.stdout + r.stderr).strip()

    def backup_members(self, part: dict, path: str = "/backup.tgz"):
        data = self.ext_cat(part, path)
        if data is None:
            return None
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as t:
            return sorted(m.name for m in t.getmembers())

    # ---------------------------------------------------------------- manifest comparison
    def compare(self, manifest: dict) -> dict:
        """For each partition of the image manifest: 'unchanged' when the same region of this disk
        has the same digest, 'changed' otherwise, 'missing' when no partition starts there."""
        res = {}
        by_start = {p["start"]: p for p in self.partitions()}
        for mp in manifest.get("partitions", []):
            p = by_start.get(mp["start"])
            if p is None or p["size"] != mp["size"]:
                res[mp["name"]] = "missing"
            else:
                res[mp["name"]] = "unchanged" if self.digest(p) == mp["sha256"] else "changed"
        return res


def summary(path: str, manifest=None, files: bool = True) -> dict:
    with Disk(path) as d:
        t = d.table()
        parts = d.partitions()
        out = {"disk": path, "table": t.get("label"), "partitions": []}
        for p in parts:
            q = dict(p)
            if p["fs"] not in (None, "extended"):
                q["sha256"] = d.digest(p)
            out["partitions"].append(q)
        if manifest:
            out["vs_manifest"] = d.compare(manifest)
        if files:
            boot = d.find("resin-boot")
            if boot:
                out["resin-boot"] = d.fat_tree(boot)
                cfg = d.fat_cat(boot, "config.json")
                out["config.json"] = json.loads(cfg) if cfg else None
            data = d.find("resin-data")
            if data:
                out["resin-data"] = d.ext_ls(data, "/")
                out["backup.tgz"] = d.backup_members(data)
        return out


def redact(cfg):
    if isinstance(cfg, dict):
        return {k: ("<redacted>" if "key" in k.lower() else redact(v)) for k, v in cfg.items()}
    return cfg


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("disk")
    ap.add_argument("--manifest")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-files", action="store_true")
    a = ap.parse_args()
    manifest = json.load(open(a.manifest)) if a.manifest else None
    s = summary(a.disk, manifest, not a.no_files)
    if "config.json" in s:
        s["config.json"] = redact(s["config.json"])
    if a.json:
        print(json.dumps(s, indent=1))
        return 0
    print(f"disk {s['disk']}: partition table {s['table']}")
    for p in s["partitions"]:
        vs = ""
        if manifest and p.get("label") in s.get("vs_manifest", {}):
            vs = "  [" + s["vs_manifest"][p["label"]] + " vs image]"
        print(f"  p{p['number']}: start {p['start'] >> 20} MiB size {p['size'] >> 20} MiB "
              f"fs {p['fs']} label {p['label']!r} name {p['name']!r}"
              f"{' boot' if p['bootable'] else ''}{'  sha256 ' + p['sha256'][:16] if p.get('sha256') else ''}{vs}")
    if "resin-boot" in s:
        print("  resin-boot files:")
        for f in s["resin-boot"]:
            print(f"    {f}")
        print(f"  resin-boot/config.json: {json.dumps(s['config.json'])}")
    if "resin-data" in s:
        print(f"  resin-data: {' '.join(s['resin-data'])}")
        if s["backup.tgz"] is not None:
            print("  backup.tgz members:")
            for m in s["backup.tgz"]:
                print(f"    {m}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
