#!/usr/bin/env bash
# The Python reference handler of the handler benchmark (tests/bench-py/,
# docs/benchmarks.md) in its own venv: the official `kubernetes` client pins
# urllib3/requests versions the test tools' venvs need not share.
#   .venv-bench/   kubernetes==$KUBERNETES_VERSION
# Idempotent: pip runs only when the wanted version is not installed already.
set -euo pipefail

# shellcheck source=scripts/deps/lib.sh
. "$(dirname "$0")/lib.sh"

KUBERNETES_VERSION="37.0.2"

# shellcheck disable=SC2016 # $bin is expanded by ensure_pip
ensure_pip "$root/.venv-bench" .venv-bench .selfheal-70-bench-python "kubernetes==$KUBERNETES_VERSION" \
    "\"\$bin/python\" -c \"import kubernetes, sys; sys.exit(kubernetes.__version__ != '$KUBERNETES_VERSION')\"" \
    "kubernetes==$KUBERNETES_VERSION"
