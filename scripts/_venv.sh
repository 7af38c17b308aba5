# shellcheck shell=bash
# Shared by scripts/demo and scripts/test: make .venv with Python >= 3.11 and
# install the project into it (editable) with the extras named in $1.
# Re-installs only when pyproject.toml changed since the last install.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

find_python() {
    for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
        [ -n "$candidate" ] || continue
        command -v "$candidate" >/dev/null 2>&1 || continue
        if "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
            echo "$candidate"; return 0
        fi
    done
    echo "SMS Genie needs Python 3.11 or newer (Raspberry Pi OS bookworm has it); none was found." >&2
    echo "Install python3 (>= 3.11) with the venv module, or set PYTHON=/path/to/python3." >&2
    return 1
}

extras="${1:-}"
if [ ! -x .venv/bin/python ]; then
    py="$(find_python)"
    echo "Creating .venv with $py ..." >&2
    "$py" -m venv .venv
fi
stamp=".venv/.install-stamp"
want="$(cat pyproject.toml; echo "extras=$extras")"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    what="Flask, waitress, cryptography, pyserial, phonenumbers, openpyxl, luma.oled with pygame, gpiozero"
    [ -z "$extras" ] || what="$what; for the tests: pytest, pytest-xdist, hypothesis, Playwright, two PDU decoders"
    if [ -f "$stamp" ]; then
        echo "pyproject.toml changed: updating .venv ..." >&2
    else
        echo "First run: installing SMS Genie into .venv with what it needs ($what)." >&2
        echo "A few hundred MB from the package index: a minute or two on a fast line. Later runs start at once." >&2
    fi
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extras:+[$extras]}"
    printf '%s' "$want" > "$stamp"
fi
