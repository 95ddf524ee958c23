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

root="${SELFHEAL_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}"
python="${PYTHON:-python3}"
# The real path (a tool-cache entry when .venv is install-test-deps' symlink):
# pip writes it into the venv's shebangs, which must not name one clone.
venv="$(readlink -m "$root/.venv")"

# Version tested on this project's machines.
CARGO_LAMBDA_VERSION="1.9.2"

marker="$venv/.selfheal-30-cargo-lambda"
want="cargo-lambda==$CARGO_LAMBDA_VERSION"

runs() { PATH="$venv/bin:$PATH" "$venv/bin/cargo-lambda" lambda --version >/dev/null 2>&1; }
if [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ] && runs; then
    echo "cargo-lambda: up to date ($want)" >&2
    exit 0
fi
force=()
if ! "$venv/bin/python" -c '' >/dev/null 2>&1; then
    # No venv or a broken one (its Python is gone); 20-python.sh normally made it.
    rm -rf "$venv"
    "$python" -m venv "$venv"
elif [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ]; then
    # Recorded as installed, yet it does not run: damaged files.
    force=(--force-reinstall)
fi
rm -f "$marker"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${force[@]}" "$want"

if ! runs; then
    echo "cargo-lambda: installed $want but $venv/bin/cargo-lambda does not run" >&2
    exit 1
fi
printf '%s' "$want" >"$marker"
echo "cargo-lambda: installed ($(PATH="$venv/bin:$PATH" "$venv/bin/cargo-lambda" lambda --version 2>&1 | head -n1))" >&2
