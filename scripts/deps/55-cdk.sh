#!/usr/bin/env bash
# The CDK alternative (cdk/): aws-cdk-lib, constructs, the aws-cdk CLI and
# TypeScript, exactly as pinned in cdk/package-lock.json (`npm ci`), for the
# offline `cdk synth` check (scripts/check-cdk).
# Idempotent: npm ci (which deletes node_modules first) runs only when the
# lockfile's hash differs from the one recorded after the last install.
# aws-cdk-lib needs Node >= 20 (its `engines`); older Node fails here, clearly.
set -euo pipefail

root="${SELFHEAL_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}"
app="$root/cdk"
lock="$app/package-lock.json"
marker="$app/node_modules/.selfheal-55-lock.sha256"

if ! command -v npm >/dev/null 2>&1; then
    echo "cdk: npm not found, installing Debian's nodejs/npm" >&2
    apt-get install -y nodejs npm >/dev/null || { apt-get update >/dev/null && apt-get install -y nodejs npm >/dev/null; }
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
    echo "cdk: aws-cdk-lib needs Node >= 20, found $(node --version)" >&2
    exit 1
fi

want="$(sha256sum "$lock" | cut -d' ' -f1)"
if [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ] \
    && CDK_DISABLE_VERSION_CHECK=1 CDK_DISABLE_CLI_TELEMETRY=1 "$app/node_modules/.bin/cdk" --version >/dev/null 2>&1 \
    && "$app/node_modules/.bin/tsc" --version >/dev/null 2>&1; then
    echo "cdk: up to date (node_modules matches package-lock.json)" >&2
    exit 0
fi
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

# Fail here, not in the check, when the install is broken.
CDK_DISABLE_VERSION_CHECK=1 CDK_DISABLE_CLI_TELEMETRY=1 "$app/node_modules/.bin/cdk" --version >&2
"$app/node_modules/.bin/tsc" --version >&2
echo "cdk: installed (npm ci)" >&2
