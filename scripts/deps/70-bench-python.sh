#!/usr/bin/env bash
# The Python reference handler of the handler benchmark (tests/bench-py/,
# docs/benchmarks.md) in its own venv: the official `kubernetes` client pins
# urllib3/requests versions the test tools' venvs need not share.
#   .venv-bench/   kubernetes==$KUBERNETES_VERSION
# Idempotent: pip runs only when the wanted version is not installed already.
set -euo pipefail

root="${SELFHEAL_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}"
python="${PYTHON:-python3}"

KUBERNETES_VERSION="37.0.2"
want="kubernetes==$KUBERNETES_VERSION"

# The real path: .venv-bench may be install-test-deps' symlink into the tool
# cache, and pip writes the venv's path into entry-point shebangs.
dir="$(readlink -m "$root/.venv-bench")"
marker="$dir/.selfheal-70-bench-python"
check=(-c "import kubernetes, sys; sys.exit(kubernetes.__version__ != '$KUBERNETES_VERSION')")

if [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ] \
    && "$dir/bin/python" "${check[@]}" >/dev/null 2>&1; then
    echo ".venv-bench: up to date ($want)" >&2
    exit 0
fi
if ! "$dir/bin/python" -c '' >/dev/null 2>&1; then
    rm -rf "$dir"
    "$python" -m venv "$dir"
fi
rm -f "$marker"
"$dir/bin/python" -m pip install --quiet --disable-pip-version-check "$want"
if ! "$dir/bin/python" "${check[@]}" >/dev/null 2>&1; then
    echo ".venv-bench: installed $want but it does not import" >&2
    exit 1
fi
printf '%s' "$want" >"$marker"
echo ".venv-bench: installed ($want)" >&2
