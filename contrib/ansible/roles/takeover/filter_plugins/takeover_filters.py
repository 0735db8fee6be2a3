"""Filters of the takeover role: which release binary a host gets, and SHA256SUMS parsing.

    {{ ansible_facts.architecture | takeover_target(board_model) }}
        -> "x86_64-unknown-linux-musl" | "aarch64-unknown-linux-musl"
           | "armv7-unknown-linux-musleabihf" | "arm-unknown-linux-musleabi"
    {{ lookup('file', dist ~ '/SHA256SUMS') | takeover_sha256sums }}  -> {file name: hex digest}
    {{ sums | takeover_release_version }}  -> the one takeover version the sums list

The release binaries (README, "Release binaries"): x86_64 for NUCs and generic PCs, aarch64 for
64-bit Pi OS and Jetson, armv7 for 32-bit Pi OS and BeagleBone, armv6 (Pi Zero/1; it runs on
every Pi). The kernel's machine name decides; the board refines it where the machine name is not
enough: a Pi Zero or Pi 1 (ARM11, ARMv6) always gets the armv6 binary, whatever it reports.
"""

import re

from ansible.errors import AnsibleFilterError

TARGETS = {
    "x86_64": "x86_64-unknown-linux-musl",
    "amd64": "x86_64-unknown-linux-musl",
    "aarch64": "aarch64-unknown-linux-musl",
    "arm64": "aarch64-unknown-linux-musl",
    "armv8l": "armv7-unknown-linux-musleabihf",  # 32-bit userland on a 64-bit ARM core
    "armv7l": "armv7-unknown-linux-musleabihf",
    "armv7": "armv7-unknown-linux-musleabihf",
    "armhf": "armv7-unknown-linux-musleabihf",
    "armv6l": "arm-unknown-linux-musleabi",
    "armv6": "arm-unknown-linux-musleabi",
}
ARMV6 = "arm-unknown-linux-musleabi"
# /proc/device-tree/model of the ARMv6 Pis: "Raspberry Pi Model B Rev 2", "Raspberry Pi Model A
# Plus Rev 1.1", "Raspberry Pi Zero W Rev 1.1", "Raspberry Pi Compute Module Rev 1.0" (not the
# Zero 2 W, not "Raspberry Pi 3 Model B", not "Compute Module 3").
ARMV6_BOARDS = re.compile(r"^Raspberry Pi (Model [AB]\b|Zero(?! 2)|Compute Module Rev)")


def takeover_target(arch, board=""):
    """The Rust target of the release binary for a host (machine name from the facts, board
    model from /proc/device-tree/model, may be empty)."""
    key = str(arch or "").strip().lower()
    board = str(board or "").strip().strip("\0")
    if key.startswith("arm") and ARMV6_BOARDS.match(board):
        return ARMV6
    if key not in TARGETS:
        raise AnsibleFilterError(
            f"takeover_target: no takeover release binary for architecture {arch!r} "
            f"(board {board!r}); supported: x86_64, aarch64, armv7l, armv6l")
    return TARGETS[key]


def takeover_board_name(text):
    """A board model as read from /proc/device-tree/model: without the NUL terminator."""
    return str(text or "").replace("\0", "").strip()


def takeover_sha256sums(text):
    """'<hex>  <name>' lines (sha256sum's format, '*' binary marker allowed) -> {name: hex}."""
    sums = {}
    for n, line in enumerate(str(text).splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"([0-9a-fA-F]{64}) [ *](.+)", line)
        if not m:
            raise AnsibleFilterError(f"takeover_sha256sums: line {n} is not '<sha256>  <file>': {line[:80]!r}")
        sums[m.group(2).split("/")[-1]] = m.group(1).lower()
    return sums


def takeover_release_version(sums):
    """The takeover version of the binaries named takeover-<version>-<target> in the sums; an
    error unless exactly one version is there (then set takeover_release)."""
    versions = set()
    for name in sums:
        for target in set(TARGETS.values()):
            suffix = "-" + target
            if name.startswith("takeover-") and name.endswith(suffix):
                versions.add(name[len("takeover-"):-len(suffix)])
    if len(versions) != 1:
        raise AnsibleFilterError(
            f"takeover_release_version: SHA256SUMS lists {len(versions)} takeover versions "
            f"({', '.join(sorted(versions)) or 'none'}); set takeover_release")
    return versions.pop()


class FilterModule:
    def filters(self):
        return {
            "takeover_target": takeover_target,
            "takeover_board_name": takeover_board_name,
            "takeover_sha256sums": takeover_sha256sums,
            "takeover_release_version": takeover_release_version,
        }
