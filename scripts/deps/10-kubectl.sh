#!/usr/bin/env bash
# Private kubectl for the kubectl parity tests (tests/tests/kubectl_parity.rs).
#
# Why a private copy: a `kubectl` already on the machine may be anything (a
# wrapper, another version); the tests must run a known, real client. Debian's
# `kubernetes-client` (kubectl 1.20) is unpacked with dpkg-deb into
# .tools/kubectl/ without installing it system-wide, so nothing is replaced.
# Idempotent: does nothing when the binary is already there and runs.
set -euo pipefail
root="${SELFHEAL_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}"
dest="$root/.tools/kubectl"
bin="$dest/usr/bin/kubectl"

if [ -x "$bin" ] && "$bin" version --client >/dev/null 2>&1; then
    echo "kubectl: already present at $bin" >&2
    exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# apt-get download writes into the current directory; no root needed for it.
# Only refresh the package lists when the first attempt fails (slow, needs root).
if ! (cd "$work" && apt-get download kubernetes-client >/dev/null 2>&1); then
    echo "kubectl: download failed, running apt-get update and retrying" >&2
    apt-get update >/dev/null
    (cd "$work" && apt-get download kubernetes-client)
fi

deb="$(ls "$work"/kubernetes-client_*.deb)"
rm -rf "$dest"
mkdir -p "$dest"
dpkg-deb -x "$deb" "$dest"

if ! "$bin" version --client >/dev/null 2>&1; then
    echo "kubectl: unpacked $deb but $bin does not run" >&2
    exit 1
fi
echo "kubectl: installed $("$bin" version --client --short 2>/dev/null || echo) at $bin" >&2
