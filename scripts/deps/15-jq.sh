#!/usr/bin/env bash
# jq (Debian `jq`): the runbook (docs/operating.md §5) edits the bad-images
# annotation with it, and crates/selfheal-cli/tests/runbook.rs runs that
# block as printed. Idempotent: does nothing when jq runs.
set -euo pipefail
# shellcheck source=scripts/deps/lib.sh
. "$(dirname "$0")/lib.sh"

ensure_apt jq 'jq --version' jq
