#!/usr/bin/env bash
# Python tools used by the tests, each in a venv inside the clone (never global):
#   .venv/         moto[server] (fake EKS/STS for tests/tests/eks_describe_cluster.rs)
#                  and later Python test tools.
#   .venv-awscli/  awscli v1, kept apart because it pins its own botocore; it is the
#                  reference for our EKS token (tests/tests/eks_token_vs_awscli.rs).
# Idempotent: pip runs only when the wanted versions are not installed already
# (a marker file per venv records what was installed).
set -euo pipefail

root="${SELFHEAL_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}"
python="${PYTHON:-python3}"

# Versions tested together on this project's machines.
MOTO_VERSION="5.2.5"
AWSCLI_VERSION="1.46.2"

# ensure_venv DIR MARKER_TEXT PIP_ARGS...
ensure_venv() {
    local dir="$1" want="$2"
    shift 2
    local marker="$dir/.selfheal-20-python"
    if [ -x "$dir/bin/python" ] && [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ]; then
        echo "$(basename "$dir"): up to date ($want)" >&2
        return 0
    fi
    if [ ! -x "$dir/bin/python" ]; then
        "$python" -m venv "$dir"
    fi
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
    printf '%s' "$want" >"$marker"
    echo "$(basename "$dir"): installed ($want)" >&2
}

ensure_venv "$root/.venv" "moto[server]==$MOTO_VERSION" "moto[server]==$MOTO_VERSION"
ensure_venv "$root/.venv-awscli" "awscli==$AWSCLI_VERSION" "awscli==$AWSCLI_VERSION"

"$root/.venv/bin/moto_server" --help >/dev/null
"$root/.venv-awscli/bin/aws" --version >&2
