#!/usr/bin/env bash
# Python tools used by the tests, each in a venv inside the clone (never global):
#   .venv/         moto[server] (fake EKS/STS for tests/tests/eks_describe_cluster.rs)
#                  and later Python test tools.
#   .venv-awscli/  awscli v1, kept apart because it pins its own botocore; it is the
#                  reference for our EKS token (tests/tests/eks_token_vs_awscli.rs).
# Idempotent: pip runs only when the wanted versions are not installed already
# (a marker file per venv records what was installed).
set -euo pipefail

# shellcheck source=scripts/deps/lib.sh
. "$(dirname "$0")/lib.sh"

# Versions tested together on this project's machines.
MOTO_VERSION="5.2.5"
AWSCLI_VERSION="1.46.2"

# shellcheck disable=SC2016 # $bin is expanded by ensure_pip
ensure_pip "$root/.venv" .venv .selfheal-20-python "moto[server]==$MOTO_VERSION" '"$bin/moto_server" --help' \
    "moto[server]==$MOTO_VERSION"
# shellcheck disable=SC2016
ensure_pip "$root/.venv-awscli" .venv-awscli .selfheal-20-python "awscli==$AWSCLI_VERSION" '"$bin/aws" --version' \
    "awscli==$AWSCLI_VERSION"
