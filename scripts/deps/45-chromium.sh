#!/usr/bin/env bash
# Headless Chromium and its WebDriver (Debian `chromium`, `chromium-driver`):
# tests/tests/approval_browser.rs opens the approval page in a real browser
# through chromedriver. Debian's packages, not a downloaded browser build,
# so the browser and its driver always match. fonts-dejavu-core: a font for
# the page's text in the screenshot on a minimal system.
# Idempotent: does nothing when both run.
set -euo pipefail
# shellcheck source=scripts/deps/lib.sh
. "$(dirname "$0")/lib.sh"

ensure_apt chromium 'chromium --headless --version && chromedriver --version' \
    chromium chromium-driver fonts-dejavu-core
