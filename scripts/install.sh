#!/usr/bin/env bash
# Installs sb3-snn, its plugins and test tools into ./.venv (created if missing), without ever
# replacing the torch that is there: torch 2.13.0 first (the CPU build on these machines), then the
# rest under constraints.txt, then a check that torch is still the same build.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${SB3_SNN_VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
"$VENV/bin/python" -c "import torch" 2>/dev/null || "${PIP[@]}" "torch==2.13.0"
before=$("$VENV/bin/python" -c "import torch; print(torch.__version__)")
plugins=()
for dir in plugins/*/; do [ -f "$dir/pyproject.toml" ] && plugins+=(-e "$dir"); done
"${PIP[@]}" -c constraints.txt -e ".[atari,nir,tune,test,interchange]" "${plugins[@]}" 2> >(grep -v "^WARNING: Location" >&2)
after=$("$VENV/bin/python" -c "import torch; print(torch.__version__)")
if [ "$before" != "$after" ]; then
  echo "install.sh: torch changed from $before to $after; constraints.txt no longer protects it" >&2
  exit 1
fi
echo "install.sh: sb3-snn installed in $VENV (torch $after kept)"
