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

# ensure_venv DIR MARKER_TEXT CHECK PIP_ARGS...
#   CHECK: a command in DIR/bin, with arguments, that must run for the venv to
#   count as installed (a marker alone would trust a half-finished install).
ensure_venv() {
    local dir name want="$2" check="$3"
    # The real path: DIR may be install-test-deps' symlink into the tool cache,
    # and pip writes the venv's path into every entry-point shebang, which must
    # not name one clone.
    dir="$(readlink -m "$1")"
    name="$(basename "$1")"
    shift 3
    local marker="$dir/.selfheal-20-python" cmd force=()
    read -ra cmd <<<"$check"
    if [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ] \
        && "$dir/bin/${cmd[0]}" "${cmd[@]:1}" >/dev/null 2>&1; then
        echo "$name: up to date ($want)" >&2
        return 0
    fi
    if ! "$dir/bin/python" -c '' >/dev/null 2>&1; then
        # No venv, or a broken one (its Python is gone): start over.
        rm -rf "$dir"
        "$python" -m venv "$dir"
    elif [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ]; then
        # Recorded as installed, yet the tool does not run: damaged files.
        force=(--force-reinstall)
    fi
    rm -f "$marker"
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "${force[@]}" "$@"
    if ! "$dir/bin/${cmd[0]}" "${cmd[@]:1}" >/dev/null 2>&1; then
        echo "$name: installed $want but \`$check\` does not run" >&2
        exit 1
    fi
    printf '%s' "$want" >"$marker"
    echo "$name: installed ($want)" >&2
}

ensure_venv "$root/.venv" "moto[server]==$MOTO_VERSION" "moto_server --help" "moto[server]==$MOTO_VERSION"
ensure_venv "$root/.venv-awscli" "awscli==$AWSCLI_VERSION" "aws --version" "awscli==$AWSCLI_VERSION"
