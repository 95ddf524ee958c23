#!/usr/bin/env bash
# Offline `cdk synth` of the CDK alternative, then scripts/check-synth.mjs on
# the result; the workload-account app too (scripts/check-workload.mjs). Needs
# `scripts/deps/55-cdk.sh` (npm ci) to have run.
#
# Function code: cargo-lambda's `target/lambda/<fn>/bootstrap` when every
# function has been built; otherwise a placeholder folder with an empty
# `bootstrap` per function (`-c assetDir=`). With placeholders this checks the
# synthesized template only: the assets are not deployable.
#
# Offline: an environment-agnostic stack (no lookups), no version check, no
# notices, no telemetry, no instance-metadata probing for credentials.
set -euo pipefail

app="$(cd "$(dirname "$0")/.." && pwd)"
root="$(cd "$app/.." && pwd)"
cdk="$app/node_modules/.bin/cdk"
if [ ! -x "$cdk" ]; then
    echo "check-cdk: $cdk missing; run scripts/deps/55-cdk.sh (or scripts/install-test-deps)" >&2
    exit 1
fi

export CDK_DISABLE_VERSION_CHECK=1 CDK_DISABLE_CLI_TELEMETRY=1 AWS_EC2_METADATA_DISABLED=true

names=()
for dir in "$root"/functions/*/; do
    [ -f "$dir/Cargo.toml" ] && names+=("$(basename "$dir")")
done
asset_dir="$root/target/lambda"
for name in "${names[@]}"; do
    if [ ! -f "$asset_dir/$name/bootstrap" ]; then
        asset_dir="$app/.asset-placeholder"
        break
    fi
done
if [ "$asset_dir" = "$app/.asset-placeholder" ]; then
    for name in "${names[@]}"; do
        mkdir -p "$asset_dir/$name"
        : >"$asset_dir/$name/bootstrap"
    done
    echo "check-cdk: no complete cargo-lambda build in target/lambda; placeholder assets (template check only)" >&2
else
    echo "check-cdk: function assets from target/lambda" >&2
fi

out="$app/cdk.out"
rm -rf "$out"
(cd "$app" && "$cdk" synth --no-notices --quiet -c assetDir="$asset_dir" --output "$out")
node "$app/scripts/check-synth.mjs" "$out" Selfheal

# The workload-account stack (bin/workload-account.ts), an app of its own:
# the same template as deploy/workload-account.yaml, or the check fails.
workload="$out/workload"
(cd "$app" && "$cdk" synth --no-notices --quiet --app "node dist/bin/workload-account.js" --output "$workload")
node "$app/scripts/check-workload.mjs" "$workload" SelfhealWorkloadAccount

# The synthesized template through cfn-lint too (installed by scripts/deps/50-validators.sh).
# W3005 (a DependsOn that a GetAtt already implies) is how CDK always writes
# a function's dependency on its role's policy; everything else must be clean.
cfn_lint="$root/.venv/bin/cfn-lint"
if [ -x "$cfn_lint" ]; then
    "$cfn_lint" --ignore-checks W3005 -- "$out/Selfheal.template.json"
    "$cfn_lint" -- "$workload/SelfhealWorkloadAccount.template.json"
    echo "check-cdk: cfn-lint clean on the synthesized templates" >&2
else
    echo "check-cdk: $cfn_lint not installed; skipped cfn-lint of the synthesized template" >&2
fi
