#!/usr/bin/env bash
# Template and state-machine validators for scripts/check-templates:
#   .venv/            cfn-lint, statelint   (cfn-lint already comes with moto; pinned here)
#   .venv-sam/        aws-sam-cli           (own venv: it pins its own botocore/cfn-lint)
#   .venv-checkov/    checkov               (own venv: it pins boto3 and friends, which clash with moto's)
#   .tools/node/      npm asl-validator     (node_modules under .tools, never global)
# Idempotent: each tool is installed only when its marker records another version.
set -euo pipefail

# shellcheck source=scripts/deps/lib.sh
. "$(dirname "$0")/lib.sh"

# Versions tested together on this project's machines.
CFN_LINT_VERSION="1.58.0"
STATELINT_VERSION="3.1.0"
SAM_VERSION="1.170.0"
CHECKOV_VERSION="3.3.30"
ASL_VALIDATOR_VERSION="4.0.0"

# shellcheck disable=SC2016 # $bin is expanded by ensure_pip
ensure_pip "$root/.venv" cfn-lint-statelint .selfheal-50-cfn-lint-statelint \
    "cfn-lint==$CFN_LINT_VERSION statelint==$STATELINT_VERSION" \
    '"$bin/cfn-lint" --version && "$bin/statelint" --help' \
    "cfn-lint==$CFN_LINT_VERSION" "statelint==$STATELINT_VERSION"
# shellcheck disable=SC2016
ensure_pip "$root/.venv-sam" aws-sam-cli .selfheal-50-aws-sam-cli "aws-sam-cli==$SAM_VERSION" '"$bin/sam" --version' \
    "aws-sam-cli==$SAM_VERSION"
# shellcheck disable=SC2016
ensure_pip "$root/.venv-checkov" checkov .selfheal-50-checkov "checkov==$CHECKOV_VERSION" '"$bin/checkov" --version' \
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
    ensure_npm asl-validator
    mkdir -p "$node_dir"
    npm install --prefix "$node_dir" --no-audit --no-fund --silent "$node_want"
    printf '%s' "$node_want" >"$node_marker"
    echo "asl-validator: installed ($node_want) in .tools/node" >&2
fi

# Fail here, not in check-templates, when an install is broken (ensure_pip
# already ran each Python tool; checkov alone takes seconds to start).
"$node_dir/node_modules/.bin/asl-validator" --help >/dev/null
