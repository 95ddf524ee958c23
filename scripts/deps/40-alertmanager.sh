#!/usr/bin/env bash
# Prometheus Alertmanager 0.25 (Debian `prometheus-alertmanager`) for the real
# webhook test (tests/tests/ingest_alertmanager.rs): the test runs it by hand
# on 127.0.0.1; apt starts no service here.
#
# Preferred: apt-get install (as root). Without root or a usable apt, the
# .deb is fetched with `apt-get download` and unpacked into
# .tools/alertmanager/, with .tools/bin/{alertmanager,amtool} linking to it.
# Idempotent: does nothing when a 0.25 alertmanager is already available.
set -euo pipefail

root="${SELFHEAL_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}"
want_version="0.25."
# The real path (a tool-cache entry when .tools is install-test-deps' symlink):
# the .tools/bin links below must not point into one clone.
tools="$(readlink -m "$root/.tools")"
private="$tools/alertmanager"

version_of() {
    "$1" --version 2>&1 | sed -n 's/^alertmanager, version \([0-9.]*\).*/\1/p' | head -n1
}

found=""
for candidate in "$tools/bin/alertmanager" /usr/bin/prometheus-alertmanager /usr/bin/alertmanager; do
    if [ -x "$candidate" ] && [ "$(version_of "$candidate")" != "" ]; then
        case "$(version_of "$candidate")" in
        "$want_version"*)
            found="$candidate"
            break
            ;;
        esac
    fi
done
if [ -n "$found" ]; then
    echo "alertmanager: up to date ($found, $(version_of "$found"))" >&2
    exit 0
fi

installed=""
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    if apt-get install -y --no-install-recommends prometheus-alertmanager >&2 ||
        { apt-get update >&2 && apt-get install -y --no-install-recommends prometheus-alertmanager >&2; }; then
        installed="apt"
    fi
fi

if [ -z "$installed" ]; then
    # No root (or apt-get install failed): unpack the package privately.
    command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || {
        echo "alertmanager: need apt-get and dpkg-deb to fetch prometheus-alertmanager" >&2
        exit 1
    }
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    (cd "$work" && apt-get download prometheus-alertmanager >&2)
    rm -rf "$private"
    mkdir -p "$private" "$tools/bin"
    dpkg-deb -x "$work"/prometheus-alertmanager_*.deb "$private"
    installed="private"
fi

# One stable path for the tests whichever way it was installed.
mkdir -p "$tools/bin"
for pair in "alertmanager:prometheus-alertmanager" "amtool:amtool"; do
    link="${pair%%:*}" bin="${pair##*:}"
    for dir in "$private/usr/bin" /usr/bin; do
        if [ -x "$dir/$bin" ]; then
            ln -sfn "$dir/$bin" "$tools/bin/$link"
            break
        fi
    done
done

if [ ! -x "$tools/bin/alertmanager" ]; then
    echo "alertmanager: installed ($installed) but no alertmanager binary found" >&2
    exit 1
fi
echo "alertmanager: installed via $installed ($(version_of "$tools/bin/alertmanager"))" >&2
