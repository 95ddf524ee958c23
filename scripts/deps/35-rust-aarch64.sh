#!/usr/bin/env bash
# The Rust standard library for aarch64-unknown-linux-gnu, which `sam build`
# needs: the template's functions are arm64 and SAM's rust-cargolambda builder
# runs `cargo lambda build --release --arm64` (linked by cargo-lambda's zig,
# scripts/deps/30-cargo-lambda.sh). Used by scripts/sam-build-check only, so
# a machine that cannot reach rustup's dist server only warns here (the test
# suite does not need the target); with SELFHEAL_REQUIRE_TOOLS=1 it fails.
# Idempotent: rustup runs only when the active toolchain lacks the target.
set -euo pipefail

target=aarch64-unknown-linux-gnu

installed() { rustup target list --installed 2>/dev/null | grep -qx "$target"; }

if ! command -v rustup >/dev/null 2>&1; then
    echo "rust-aarch64: rustup not found; install the $target standard library for your toolchain yourself" >&2
    [ "${SELFHEAL_REQUIRE_TOOLS:-0}" = 1 ] && exit 1
    exit 0
fi
if installed; then
    echo "rust-aarch64: up to date ($target for $(rustc -V))" >&2
    exit 0
fi
if rustup target add "$target" && installed; then
    echo "rust-aarch64: installed $target for $(rustc -V)" >&2
    exit 0
fi
echo "rust-aarch64: could not install $target (rustup target add failed); sam build of the arm64 functions will not work" >&2
[ "${SELFHEAL_REQUIRE_TOOLS:-0}" = 1 ] && exit 1
exit 0
