"""Unit tests of the takeover role's controller-side code (filter plugin, fleet report builder).

    contrib/ansible/.venv/bin/python -m unittest discover -s contrib/ansible/tests -v
(`make ansible-test` does this; the filter plugin imports ansible, so use the venv's python.)
"""
import csv
import importlib.util
import json
import os
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROLE = os.path.join(os.path.dirname(HERE), "roles", "takeover")


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


filters = load("takeover_filters", os.path.join(ROLE, "filter_plugins", "takeover_filters.py"))
fleet_report = load("fleet_report", os.path.join(ROLE, "files", "fleet_report.py"))


class PickBinary(unittest.TestCase):
    def test_architectures(self):
        # (ansible_facts.architecture, /proc/device-tree/model or DMI product) -> release target
        cases = [
            ("x86_64", "Intel(R) Client Systems NUC8i5BEH", "x86_64-unknown-linux-musl"),
            ("x86_64", "", "x86_64-unknown-linux-musl"),
            ("aarch64", "Raspberry Pi 4 Model B Rev 1.4", "aarch64-unknown-linux-musl"),
            ("aarch64", "NVIDIA Jetson Nano Developer Kit", "aarch64-unknown-linux-musl"),
            ("armv7l", "Raspberry Pi 3 Model B Plus Rev 1.3", "armv7-unknown-linux-musleabihf"),
            ("armv7l", "TI AM335x BeagleBone Black", "armv7-unknown-linux-musleabihf"),
            ("armv7l", "Raspberry Pi Zero 2 W Rev 1.0", "armv7-unknown-linux-musleabihf"),
            ("armv6l", "Raspberry Pi Zero W Rev 1.1", "arm-unknown-linux-musleabi"),
            ("armv6l", "Raspberry Pi Model B Rev 2", "arm-unknown-linux-musleabi"),
            # a Pi 1 / Zero is ARMv6 whatever the kernel calls itself
            ("armv7l", "Raspberry Pi Zero W Rev 1.1\0", "arm-unknown-linux-musleabi"),
            ("armv7l", "Raspberry Pi Compute Module Rev 1.0", "arm-unknown-linux-musleabi"),
            ("armv7l", "Raspberry Pi Compute Module 3 Plus Rev 1.0", "armv7-unknown-linux-musleabihf"),
        ]
        for arch, board, want in cases:
            with self.subTest(arch=arch, board=board):
                self.assertEqual(filters.takeover_target(arch, board), want)

    def test_unknown_architecture_is_an_error(self):
        with self.assertRaises(filters.AnsibleFilterError) as e:
            filters.takeover_target("mips", "Some Router")
        self.assertIn("mips", str(e.exception))

    def test_board_name(self):
        self.assertEqual(filters.takeover_board_name("Raspberry Pi 4 Model B Rev 1.4\0"),
                         "Raspberry Pi 4 Model B Rev 1.4")


class Sums(unittest.TestCase):
    A, B = "a" * 64, "B" * 64

    def test_parse(self):
        text = (f"{self.A}  takeover-0.9.0-x86_64-unknown-linux-musl\n"
                f"{self.B} *dist/takeover-0.9.0-arm-unknown-linux-musleabi\n\n")
        sums = filters.takeover_sha256sums(text)
        self.assertEqual(sums, {"takeover-0.9.0-x86_64-unknown-linux-musl": self.A,
                                "takeover-0.9.0-arm-unknown-linux-musleabi": self.B.lower()})
        self.assertEqual(filters.takeover_release_version(sums), "0.9.0")

    def test_bad_line_and_two_versions(self):
        with self.assertRaises(filters.AnsibleFilterError):
            filters.takeover_sha256sums("not a sum\n")
        sums = {"takeover-0.9.0-x86_64-unknown-linux-musl": self.A,
                "takeover-0.9.1-x86_64-unknown-linux-musl": self.A}
        with self.assertRaises(filters.AnsibleFilterError):
            filters.takeover_release_version(sums)


def report(ok=True):
    return {
        "takeover_version": "0.9.0", "mode": "dry-run", "result": "ok" if ok else "failed",
        "error": None if ok else "the image is corrupt: CRC-32 mismatch",
        "device": {"arch": "x86_64", "model": "Standard PC (i440FX + PIIX, 1996)"},
        "os": {"pretty_name": "Debian GNU/Linux 12 (bookworm)"},
        "target": {"device": "/dev/vda", "size_bytes": 2 << 30},
        "image": {"path": "/var/lib/takeover-rollout/image.img.gz", "version": "5.1.20+rev1",
                  "device_type": "genericx86-64-ext"},
        "ram": {"required_bytes": 300 << 20, "available_bytes": 800 << 20},
        "checks": [{"name": "image", "status": "pass" if ok else "fail",
                    "detail": "ok" if ok else "CRC-32 | mismatch"},
                   {"name": "efi", "status": "skip", "detail": "BIOS"}],
    }


class FleetReport(unittest.TestCase):
    def test_two_hosts_and_a_failure(self):
        with tempfile.TemporaryDirectory() as d:
            for sub in ("hosts", "reports", "migrations"):
                os.makedirs(os.path.join(d, sub))
            for name, ok in (("dev-a", True), ("dev-b", False)):
                with open(os.path.join(d, "hosts", name + ".json"), "w") as f:
                    json.dump({"host": name, "arch": "x86_64", "board": "Standard PC",
                               "binary": "takeover-0.9.0-x86_64-unknown-linux-musl",
                               "uuid": "0" * 32, "dry_run_rc": "0" if ok else "1"}, f)
                with open(os.path.join(d, "reports", name + ".json"), "w") as f:
                    json.dump(report(ok), f)
            with open(os.path.join(d, "migrations", "dev-a.json"), "w") as f:
                json.dump({"host": "dev-a", "status": "online", "detail": "uuid 000"}, f)
            with open(os.path.join(d, "hosts", "dev-c.json"), "w") as f:  # no report fetched
                json.dump({"host": "dev-c", "dry_run_rc": "2", "dry_run_stderr": ["usage error"]}, f)
            md = fleet_report.build(d)
            with open(os.path.join(d, "fleet.csv"), newline="") as f:
                rows = list(csv.DictReader(f))
        self.assertEqual([r["host"] for r in rows], ["dev-a", "dev-b", "dev-c"])
        a, b, c = rows
        self.assertEqual((a["ready"], a["migration"]), ("yes", "online"))
        self.assertEqual(a["target_disk"], "/dev/vda (2.0 GiB)")
        self.assertEqual((a["ram_needed_mib"], a["ram_available_mib"]), ("300", "800"))
        self.assertEqual(a["image"], "genericx86-64-ext 5.1.20+rev1")
        self.assertEqual(b["ready"], "no")
        self.assertEqual(b["failing_checks"], "image: CRC-32 | mismatch")
        self.assertIn("CRC-32 mismatch", b["error"])
        self.assertEqual(b["migration"], "-")
        self.assertEqual((c["ready"], c["error"]), ("no report", "usage error"))
        self.assertIn("3 hosts, 1 ready", md)
        self.assertIn("CRC-32 \\| mismatch", md)  # a | in a cell is escaped


if __name__ == "__main__":
    unittest.main()
