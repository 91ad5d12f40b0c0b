#!/usr/bin/env bash
# `cmake --install` puts drover and its worker where the installed binary finds
# them: install into a fresh prefix and run a one-test suite with it.
set -euo pipefail
build=$1 python=$2
prefix=$(mktemp -d) suite=$(mktemp -d)
trap 'rm -rf "$prefix" "$suite"' EXIT
cmake --install "$build" --prefix "$prefix" > /dev/null
test -x "$prefix/bin/drover"
test -f "$prefix/share/drover/worker_py/drover_worker/__main__.py"
printf 'def test_installed():\n    assert True\n' > "$suite/test_installed.py"
cd "$suite"
out=$(env -u DROVER_WORKER_PATH "$prefix/bin/drover" run --python "$python" -q)
echo "$out"
grep -q "0 failed, 1 passed" <<< "$out"
