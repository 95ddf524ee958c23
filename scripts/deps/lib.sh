# Shared by the install steps scripts/deps/[0-9]*.sh (sourced, never run):
# one way to install a pinned pip package into a venv, one way to run
# `npm ci` for a package-lock.json and one way to install Debian packages,
# so every step repairs a broken or half-finished install the same way.
# shellcheck shell=bash

root="${SELFHEAL_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}"
python="${PYTHON:-python3}"

# ensure_pip VENV NAME MARKER WANT CHECK PIP_ARGS...
#   Installs PIP_ARGS into VENV unless its MARKER file (a name inside VENV)
#   already records WANT and CHECK succeeds. CHECK: shell commands, run with
#   the venv's bin directory as $bin, that must succeed for the tools to count
#   as installed (a marker alone would trust a half-finished install).
ensure_pip() {
    local dir name="$2" want="$4" check="$5"
    # The real path: VENV may be install-test-deps' symlink into the tool
    # cache, and pip writes the venv's path into every entry-point shebang,
    # which must not name one clone.
    dir="$(readlink -m "$1")"
    local marker="$dir/$3" bin="$dir/bin" force=()
    shift 5
    if [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ] && (eval "$check") >/dev/null 2>&1; then
        echo "$name: up to date ($want)" >&2
        return 0
    fi
    if ! "$bin/python" -c '' >/dev/null 2>&1; then
        # No venv, or a broken one (its Python is gone): start over.
        rm -rf "$dir"
        "$python" -m venv "$dir"
    elif [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ]; then
        # Recorded as installed, yet a tool does not run: damaged files.
        force=(--force-reinstall)
    fi
    rm -f "$marker"
    "$bin/python" -m pip install --quiet --disable-pip-version-check "${force[@]}" "$@"
    if ! (eval "$check") >/dev/null 2>&1; then
        echo "$name: installed $want but \`$check\` fails" >&2
        exit 1
    fi
    printf '%s' "$want" >"$marker"
    echo "$name: installed ($want) in $(basename "$dir")" >&2
}

# ensure_npm NAME: Debian's nodejs/npm when there is no npm at all.
ensure_npm() {
    if ! command -v npm >/dev/null 2>&1; then
        echo "$1: npm not found, installing Debian's nodejs/npm" >&2
        apt-get install -y nodejs npm >/dev/null || { apt-get update >/dev/null && apt-get install -y nodejs npm >/dev/null; }
    fi
}

# ensure_npm_ci NAME APP MARKER WHY CHECK
#   `npm ci` in APP (a folder with package.json and package-lock.json) unless
#   the lockfile's hash matches the one recorded in APP/node_modules/MARKER
#   and CHECK (shell commands, run in APP) succeeds. Needs Node >= 20; WHY
#   says who needs it. npm ci deletes node_modules first, so it runs only when
#   the lockfile changed or the install is broken.
ensure_npm_ci() {
    local name="$1" app="$2" why="$4" check="$5"
    local lock="$app/package-lock.json" marker="$app/node_modules/$3"
    ensure_npm "$name"
    local node_major want modules prefix
    node_major="$(node -p 'process.versions.node.split(".")[0]')"
    if [ "$node_major" -lt 20 ]; then
        echo "$name: $why needs Node >= 20, found $(node --version)" >&2
        exit 1
    fi
    want="$(sha256sum "$lock" | cut -d' ' -f1)"
    if [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ] && (cd "$app" && eval "$check") >/dev/null 2>&1; then
        echo "$name: up to date (node_modules matches package-lock.json)" >&2
        return 0
    fi
    # node_modules may be install-test-deps' symlink into the tool cache (one
    # entry per lockfile hash). npm ci would replace a symlinked node_modules
    # with a real directory, so it runs in the entry itself, on copies of the
    # manifests.
    modules="$(readlink -m "$app/node_modules")"
    prefix="$app"
    if [ "$modules" != "$(readlink -m "$app")/node_modules" ]; then
        prefix="$(dirname "$modules")"
        mkdir -p "$prefix"
        cp "$app/package.json" "$lock" "$prefix/"
    fi
    npm ci --prefix "$prefix" --no-audit --no-fund --silent
    # Fail here, not in the tests, when the install is broken.
    if ! (cd "$app" && eval "$check") >/dev/null 2>&1; then
        echo "$name: npm ci ran but \`$check\` fails" >&2
        exit 1
    fi
    printf '%s' "$want" >"$marker"
    echo "$name: installed (npm ci)" >&2
}

# ensure_apt NAME CHECK PACKAGE...
#   When CHECK (shell commands) fails, apt-get installs the Debian PACKAGEs
#   (needs root; the package lists are refreshed only when the first attempt
#   fails), then CHECK must succeed.
ensure_apt() {
    local name="$1" check="$2"
    shift 2
    if (eval "$check") >/dev/null 2>&1; then
        echo "$name: up to date" >&2
        return 0
    fi
    if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "$name: not found; install Debian's $* (needs root and apt-get)" >&2
        return 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "$@" >&2 ||
        { apt-get update >&2 && apt-get install -y --no-install-recommends "$@" >&2; }
    if ! (eval "$check") >/dev/null 2>&1; then
        echo "$name: installed $* but the check \`$check\` fails" >&2
        return 1
    fi
    echo "$name: installed via apt ($*)" >&2
}
