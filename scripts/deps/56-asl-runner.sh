#!/usr/bin/env bash
# The ASL interpreter for the state machine end-to-end tests
# (tests/tests/statemachine_e2e.rs): npm aws-local-stepfunctions, exactly as
# pinned in tests/asl/package-lock.json (`npm ci`). tests/asl/runner.mjs
# loads it (with a Promise.withResolvers polyfill: the package asks for
# Node >= 22; Node 20 works with the polyfill).
# Idempotent: npm ci (which deletes node_modules first) runs only when the
# lockfile's hash differs from the one recorded after the last install.
set -euo pipefail

root="${SELFHEAL_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}"
app="$root/tests/asl"
lock="$app/package-lock.json"
marker="$app/node_modules/.selfheal-56-lock.sha256"

if ! command -v npm >/dev/null 2>&1; then
    echo "asl-runner: npm not found, installing Debian's nodejs/npm" >&2
    apt-get install -y nodejs npm >/dev/null || { apt-get update >/dev/null && apt-get install -y nodejs npm >/dev/null; }
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
    echo "asl-runner: tests/asl/runner.mjs needs Node >= 20, found $(node --version)" >&2
    exit 1
fi

want="$(sha256sum "$lock" | cut -d' ' -f1)"
if [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ] \
    && (cd "$app" && node -e "require('./node_modules/aws-local-stepfunctions')") >/dev/null 2>&1; then
    echo "asl-runner: up to date (node_modules matches package-lock.json)" >&2
    exit 0
fi
# The package's engines field says Node >= 22; npm only warns (engine-strict is off).
# node_modules may be install-test-deps' symlink into the tool cache (one
# entry per lockfile hash). npm ci would replace a symlinked node_modules with
# a real directory, so it runs in the entry itself, on copies of the manifests.
modules="$(readlink -m "$app/node_modules")"
prefix="$app"
if [ "$modules" != "$(readlink -m "$app")/node_modules" ]; then
    prefix="$(dirname "$modules")"
    mkdir -p "$prefix"
    cp "$app/package.json" "$lock" "$prefix/"
fi
npm ci --prefix "$prefix" --no-audit --no-fund --silent
printf '%s' "$want" >"$marker"
echo "asl-runner: installed aws-local-stepfunctions $(node -p "require('$app/node_modules/aws-local-stepfunctions/package.json').version")" >&2
