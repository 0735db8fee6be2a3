#!/bin/sh
# Installs what `make test` needs on a fresh Debian 12 machine (run as root). Idempotent.
set -eu
export DEBIAN_FRONTEND=noninteractive
pkgs="dosfstools mtools busybox-static musl-tools e2fsprogs fdisk xxd python3 curl wget file time \
      gzip pigz zip unzip tar"
missing=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  apt-get update -q
  apt-get install -y -q --no-install-recommends $missing
fi
if command -v rustup >/dev/null 2>&1; then
  rustup target list --installed | grep -qx x86_64-unknown-linux-musl || rustup target add x86_64-unknown-linux-musl
fi
