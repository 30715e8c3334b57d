#!/usr/bin/env bash
# The README's test command (CI runs it through .ci/run): install what is needed, then the four checks in
# order: ruff (style, SB3's rules), mypy (types), lint-imports (the import layers of the README's Layout) and
# pytest (the whole suite, `expensive` end-to-end tests included; arguments go to pytest, e.g.
# `-m "not expensive"` for the quick part). Every check runs; the script fails if any of them failed.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh || exit 1
BIN=.venv/bin
failed=()
check() {
  local name=$1
  shift
  echo "== $name: $*"
  local start=$SECONDS
  if "$@"; then
    echo "== $name: passed ($((SECONDS - start)) s)"
  else
    echo "== $name: FAILED ($((SECONDS - start)) s)"
    failed+=("$name")
  fi
}
check ruff "$BIN/ruff" check .
check mypy "$BIN/mypy"
check lint-imports "$BIN/lint-imports"
check pytest "$BIN/python" -m pytest -q "$@"
if [ ${#failed[@]} -gt 0 ]; then
  echo "scripts/test.sh: failed: ${failed[*]}" >&2
  exit 1
fi
echo "scripts/test.sh: ruff, mypy, lint-imports and pytest passed"
