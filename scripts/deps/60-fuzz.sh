#!/usr/bin/env bash
# cargo-fuzz for the fuzz smoke run (scripts/fuzz-smoke, fuzz/README.md).
#
# Why cargo install: cargo-fuzz has no prebuilt package in the registries we
# use; it compiles in about 2-3 minutes on these machines. Installed into the
# project-local root .tools/cargo (bin: .tools/cargo/bin/cargo-fuzz), never
# into ~/.cargo. libFuzzer itself comes with the libfuzzer-sys crate (built by
# cargo with the system C++ compiler), so nothing else is needed; the stable
# toolchain runs it with RUSTC_BOOTSTRAP=1 (see fuzz/README.md).
# Idempotent: does nothing when the pinned version is installed and runs.
set -euo pipefail

root="${SELFHEAL_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}"
dest="$root/.tools/cargo"
bin="$dest/bin/cargo-fuzz"

# Version tested on this project's machines.
CARGO_FUZZ_VERSION="0.13.2"

if [ -x "$bin" ] && "$bin" fuzz --version 2>/dev/null | grep -qx "cargo-fuzz $CARGO_FUZZ_VERSION"; then
    echo "cargo-fuzz: up to date ($CARGO_FUZZ_VERSION)" >&2
    exit 0
fi
if ! command -v c++ >/dev/null 2>&1; then
    echo "cargo-fuzz: no C++ compiler; libfuzzer-sys needs one (apt-get install g++)" >&2
    exit 1
fi
cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION" --root "$dest"
"$bin" fuzz --version >&2
