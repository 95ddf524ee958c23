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

# ensure_pip VENV MARKER_NAME WANT PIP_ARGS...
ensure_pip() {
    local dir="$1" name="$2" want="$3"
    shift 3
    local marker="$dir/.selfheal-50-$name"
    if [ -x "$dir/bin/python" ] && [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ]; then
        echo "$name: up to date ($want)" >&2
        return 0
    fi
    if [ ! -x "$dir/bin/python" ]; then
        "$python" -m venv "$dir"
    fi
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
    printf '%s' "$want" >"$marker"
    echo "$name: installed ($want) in $(basename "$dir")" >&2
}

ensure_pip "$root/.venv" cfn-lint-statelint \
    "cfn-lint==$CFN_LINT_VERSION statelint==$STATELINT_VERSION" \
    "cfn-lint==$CFN_LINT_VERSION" "statelint==$STATELINT_VERSION"
ensure_pip "$root/.venv-sam" aws-sam-cli "aws-sam-cli==$SAM_VERSION" "aws-sam-cli==$SAM_VERSION"
ensure_pip "$root/.venv-checkov" checkov "checkov==$CHECKOV_VERSION" "checkov==$CHECKOV_VERSION"

node_dir="$root/.tools/node"
node_marker="$node_dir/.selfheal-50-asl-validator"
node_want="asl-validator@$ASL_VALIDATOR_VERSION"
if [ -x "$node_dir/node_modules/.bin/asl-validator" ] && [ -f "$node_marker" ] \
    && [ "$(cat "$node_marker")" = "$node_want" ]; then
    echo "asl-validator: up to date ($node_want)" >&2
else
    if ! command -v npm >/dev/null 2>&1; then
        echo "asl-validator: npm not found, installing Debian's nodejs/npm" >&2
        apt-get install -y nodejs npm >/dev/null || { apt-get update >/dev/null && apt-get install -y nodejs npm >/dev/null; }
    fi
    mkdir -p "$node_dir"
    npm install --prefix "$node_dir" --no-audit --no-fund --silent "$node_want"
    printf '%s' "$node_want" >"$node_marker"
    echo "asl-validator: installed ($node_want) in .tools/node" >&2
fi

# Fail here, not in check-templates, when an install is broken.
"$root/.venv/bin/cfn-lint" --version >&2
"$root/.venv/bin/statelint" --help >/dev/null 2>&1 || { echo "statelint does not run" >&2; exit 1; }
"$root/.venv-sam/bin/sam" --version >&2
"$root/.venv-checkov/bin/checkov" --version >&2
"$node_dir/node_modules/.bin/asl-validator" --help >/dev/null
