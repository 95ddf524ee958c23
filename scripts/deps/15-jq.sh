#!/usr/bin/env bash
# jq (Debian `jq`): the runbook (docs/operating.md §5) edits the bad-images
# annotation with it, and crates/selfheal-cli/tests/runbook.rs runs that
# block as printed. Idempotent: does nothing when jq runs.
set -euo pipefail

if command -v jq >/dev/null 2>&1 && jq --version >/dev/null 2>&1; then
    echo "jq: up to date ($(jq --version))" >&2
    exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "jq: not found; install Debian's jq package (needs root and apt-get)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends jq >&2 ||
    { apt-get update >&2 && apt-get install -y --no-install-recommends jq >&2; }
jq --version >/dev/null
echo "jq: installed via apt ($(jq --version))" >&2
