#!/usr/bin/env bash
# cargo-lambda for the Lambda runtime emulation tests (tests/tests/lambda_runtime_e2e.rs)
# and for building the functions (`cargo lambda build`, `sam build`).
#
# Why PyPI: the `cargo-lambda` wheel ships the prebuilt binary and pulls `ziglang`
# (its cross linker); `cargo install cargo-lambda` would compile for 25-40 minutes
# (design.md §6). Installed into the project venv .venv/ (shared with
# scripts/deps/20-python.sh); put .venv/bin on PATH so cargo-lambda finds zig.
# Idempotent: pip runs only when the pinned version is not installed already.
set -euo pipefail

root="${SELFHEAL_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}"
python="${PYTHON:-python3}"
venv="$root/.venv"

# Version tested on this project's machines.
CARGO_LAMBDA_VERSION="1.9.2"

marker="$venv/.selfheal-30-cargo-lambda"
want="cargo-lambda==$CARGO_LAMBDA_VERSION"

if [ -x "$venv/bin/cargo-lambda" ] && [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ]; then
    echo "cargo-lambda: up to date ($want)" >&2
    exit 0
fi
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$want"

if ! PATH="$venv/bin:$PATH" "$venv/bin/cargo-lambda" lambda --version >/dev/null 2>&1; then
    echo "cargo-lambda: installed $want but $venv/bin/cargo-lambda does not run" >&2
    exit 1
fi
printf '%s' "$want" >"$marker"
echo "cargo-lambda: installed ($(PATH="$venv/bin:$PATH" "$venv/bin/cargo-lambda" lambda --version 2>&1 | head -n1))" >&2
