#!/usr/bin/env bash
# Install what tests/test_demo_browser.py needs, without downloading a browser from the internet:
#   * Debian's Chromium (/usr/bin/chromium) through apt, when it is missing and apt can be used;
#   * the Python packages playwright and gradio into the project's virtual environment.
# Never runs `playwright install` (that would download Playwright's own browser build).
# Idempotent: a second run changes nothing. Usage: scripts/install-browser.sh [PYTHON]  (default .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-${PY:-.venv/bin/python}}"
CHROMIUM="${UNPAIRED_CHROMIUM:-/usr/bin/chromium}"

if [ -x "$CHROMIUM" ]; then
    echo "install-browser: $CHROMIUM present"
elif command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
            echo "install-browser: $CHROMIUM missing and apt-get needs root; install the 'chromium' package" >&2
            exit 1
        fi
    fi
    echo "install-browser: installing Debian's chromium with apt-get"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium
else
    echo "install-browser: $CHROMIUM missing and no apt-get here; install Chromium and set UNPAIRED_CHROMIUM" >&2
    exit 1
fi

if "$PY" -c "import playwright, gradio" 2>/dev/null; then
    echo "install-browser: playwright and gradio present in $PY"
else
    echo "install-browser: pip installing playwright and gradio==6.31.0 into $PY"
    "$PY" -m pip install --quiet playwright "gradio==6.31.0"
fi
"$CHROMIUM" --version 2>/dev/null | grep -v "unexpected operator" || true
