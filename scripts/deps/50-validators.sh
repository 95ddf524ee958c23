#!/usr/bin/env bash
# Template and state-machine validators for scripts/check-templates:
#   .venv/            cfn-lint, statelint   (cfn-lint already comes with moto; pinned here)
#   .venv-sam/        aws-sam-cli           (own venv: it pins its own botocore/cfn-lint)
#   .venv-checkov/    checkov               (own venv: it pins boto3 and friends, which clash with moto's)
#   .tools/node/      npm asl-validator     (node_modules under .tools, never global)
# Idempotent: each tool is installed only when its marker records another version.
set -euo pipefail

root="${SELFHEAL_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}"
python="${PYTHON:-python3}"

# Versions tested together on this project's machines.
CFN_LINT_VERSION="1.58.0"
STATELINT_VERSION="3.1.0"
SAM_VERSION="1.170.0"
CHECKOV_VERSION="3.3.30"
ASL_VALIDATOR_VERSION="4.0.0"

# ensure_pip VENV MARKER_NAME WANT CHECK PIP_ARGS...
#   CHECK: shell commands (the venv's bin directory is $bin) that must succeed
#   for the tools to count as installed (a marker alone would trust a
#   half-finished install).
ensure_pip() {
    local dir name="$2" want="$3" check="$4"
    # The real path: VENV may be install-test-deps' symlink into the tool
    # cache, and pip writes the venv's path into every entry-point shebang,
    # which must not name one clone.
    dir="$(readlink -m "$1")"
    shift 4
    local marker="$dir/.selfheal-50-$name" bin="$dir/bin" force=()
    if [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ] && (eval "$check") >/dev/null 2>&1; then
        echo "$name: up to date ($want)" >&2
        return 0
    fi
    if ! "$dir/bin/python" -c '' >/dev/null 2>&1; then
        # No venv, or a broken one (its Python is gone): start over.
        rm -rf "$dir"
        "$python" -m venv "$dir"
    elif [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ]; then
        # Recorded as installed, yet a tool does not run: damaged files.
        force=(--force-reinstall)
    fi
    rm -f "$marker"
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "${force[@]}" "$@"
    if ! (eval "$check") >/dev/null 2>&1; then
        echo "$name: installed $want but \`$check\` fails" >&2
        exit 1
    fi
    printf '%s' "$want" >"$marker"
    echo "$name: installed ($want) in $(basename "$dir")" >&2
}

# shellcheck disable=SC2016 # $bin is expanded by ensure_pip
ensure_pip "$root/.venv" cfn-lint-statelint \
    "cfn-lint==$CFN_LINT_VERSION statelint==$STATELINT_VERSION" \
    '"$bin/cfn-lint" --version && "$bin/statelint" --help' \
    "cfn-lint==$CFN_LINT_VERSION" "statelint==$STATELINT_VERSION"
# shellcheck disable=SC2016
ensure_pip "$root/.venv-sam" aws-sam-cli "aws-sam-cli==$SAM_VERSION" '"$bin/sam" --version' \
    "aws-sam-cli==$SAM_VERSION"
# shellcheck disable=SC2016
ensure_pip "$root/.venv-checkov" checkov "checkov==$CHECKOV_VERSION" '"$bin/checkov" --version' \
    "checkov==$CHECKOV_VERSION"

node_dir="$root/.tools/node"
node_marker="$node_dir/.selfheal-50-asl-validator"
node_want="asl-validator@$ASL_VALIDATOR_VERSION"
if [ -f "$node_marker" ] && [ "$(cat "$node_marker")" = "$node_want" ] \
    && "$node_dir/node_modules/.bin/asl-validator" --help >/dev/null 2>&1; then
    echo "asl-validator: up to date ($node_want)" >&2
else
    # Missing, another version, or a damaged install: start from nothing.
    rm -rf "$node_dir/node_modules" "$node_marker"
    if ! command -v npm >/dev/null 2>&1; then
        echo "asl-validator: npm not found, installing Debian's nodejs/npm" >&2
        apt-get install -y nodejs npm >/dev/null || { apt-get update >/dev/null && apt-get install -y nodejs npm >/dev/null; }
    fi
    mkdir -p "$node_dir"
    npm install --prefix "$node_dir" --no-audit --no-fund --silent "$node_want"
    printf '%s' "$node_want" >"$node_marker"
    echo "asl-validator: installed ($node_want) in .tools/node" >&2
fi

# Fail here, not in check-templates, when an install is broken (ensure_pip
# already ran each Python tool; checkov alone takes seconds to start).
"$node_dir/node_modules/.bin/asl-validator" --help >/dev/null
