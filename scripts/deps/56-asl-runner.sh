#!/usr/bin/env bash
# The ASL interpreter for the state machine end-to-end tests
# (tests/tests/statemachine_e2e.rs): npm aws-local-stepfunctions, exactly as
# pinned in tests/asl/package-lock.json (`npm ci`). tests/asl/runner.mjs
# loads it (with a Promise.withResolvers polyfill: the package asks for
# Node >= 22; Node 20 works with the polyfill).
# Idempotent: npm ci (which deletes node_modules first) runs only when the
# lockfile's hash differs from the one recorded after the last install.
set -euo pipefail
# shellcheck source=scripts/deps/lib.sh
. "$(dirname "$0")/lib.sh"

# The package's engines field says Node >= 22; npm only warns (engine-strict
# is off) and the runner's polyfill covers Node 20.
ensure_npm_ci asl-runner "$root/tests/asl" .selfheal-56-lock.sha256 tests/asl/runner.mjs \
    "node -e \"require('./node_modules/aws-local-stepfunctions')\""
