#!/usr/bin/env bash
# Sets up Threshold on a fresh Debian/Ubuntu machine: a virtualenv in .venv with the
# project installed. With --test it also installs what the test suite runs for real:
# Debian's GStreamer RTSP server (the test camera; plugins-bad for its H.265 and AAC
# encoders, as real cameras send), ffmpeg (the benchmarks' reference), Chromium (the owner
# app's browser tests drive it by path: no browser is ever downloaded) and PostgreSQL (the
# relay's fleet backend: tests start throw-away clusters with its binaries) and Pebble (the
# ACME test server and its challenge test DNS server, pebble-challtestsrv: docs/remote.md).
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
for arg in "$@"; do
    case "$arg" in
        --test) want_test=1 ;;
        *) echo "setup.sh: unknown option $arg (use --test)" >&2; exit 2 ;;
    esac
done

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_packages=()
need_pkg() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed" || apt_packages+=("$1")
}

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
    echo "setup.sh: Threshold needs Python 3.11 or newer as '$PYTHON' (set PYTHON=...)" >&2
    exit 2
fi
if ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
    need_pkg python3-venv
fi
if [ "$want_test" -eq 1 ]; then
    for pkg in gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-base \
               gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gstreamer1.0-plugins-bad \
               ffmpeg openssl systemd mosquitto chromium postgresql pebble; do
        need_pkg "$pkg"
    done
fi
if [ "${#apt_packages[@]}" -gt 0 ]; then
    echo "setup.sh: installing Debian packages: ${apt_packages[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${apt_packages[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
if [ "$want_test" -eq 1 ]; then
    .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
else
    .venv/bin/python -m pip install -q --disable-pip-version-check -e .
fi
echo "setup.sh: ready (.venv)"
