#!/usr/bin/env bash
# The CDK alternative (cdk/): aws-cdk-lib, constructs, the aws-cdk CLI and
# TypeScript, exactly as pinned in cdk/package-lock.json (`npm ci`), for the
# offline `cdk synth` check (scripts/check-cdk).
# Idempotent: npm ci (which deletes node_modules first) runs only when the
# lockfile's hash differs from the one recorded after the last install.
# aws-cdk-lib needs Node >= 20 (its `engines`); older Node fails here, clearly.
set -euo pipefail
# shellcheck source=scripts/deps/lib.sh
. "$(dirname "$0")/lib.sh"

# shellcheck disable=SC2016 # run by ensure_npm_ci
ensure_npm_ci cdk "$root/cdk" .selfheal-55-lock.sha256 aws-cdk-lib \
    'CDK_DISABLE_VERSION_CHECK=1 CDK_DISABLE_CLI_TELEMETRY=1 node_modules/.bin/cdk --version && node_modules/.bin/tsc --version'
