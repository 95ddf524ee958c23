#!/usr/bin/env bash
# cargo-lambda for the Lambda runtime emulation tests (tests/tests/lambda_runtime_e2e.rs)
# and for building the functions (`cargo lambda build`, `sam build`).
#
# Why PyPI: the `cargo-lambda` wheel ships the prebuilt binary and pulls `ziglang`
# (its cross linker); `cargo install cargo-lambda` would compile for 25-40 minutes
# on a 2-core machine. Installed into the project venv .venv/ (shared with
# scripts/deps/20-python.sh); put .venv/bin on PATH so cargo-lambda finds zig.
# Idempotent: pip runs only when the pinned version is not installed already.
set -euo pipefail

# shellcheck source=scripts/deps/lib.sh
. "$(dirname "$0")/lib.sh"

# Version tested on this project's machines.
CARGO_LAMBDA_VERSION="1.9.2"

# .venv is normally made by 20-python.sh. cargo-lambda finds zig on PATH.
# shellcheck disable=SC2016 # $bin is expanded by ensure_pip
ensure_pip "$root/.venv" cargo-lambda .selfheal-30-cargo-lambda "cargo-lambda==$CARGO_LAMBDA_VERSION" \
    'PATH="$bin:$PATH" "$bin/cargo-lambda" lambda --version' "cargo-lambda==$CARGO_LAMBDA_VERSION"
