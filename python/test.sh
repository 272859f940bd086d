#!/usr/bin/env bash
# Builds the Python package into a virtual environment (packages from PyPI) and runs its tests.
# Usage: bash python/test.sh [pytest args...]   (from anywhere; the venv is target/pyenv)
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv target/pyenv
target/pyenv/bin/pip install --quiet --upgrade pip
target/pyenv/bin/pip install --quiet "./python[test]"
# The tests compare against the command line: the binary `cargo test` builds, else the release one.
if [[ -z "${NEUROGRAPH_BIN:-}" && -x target/debug/neurograph ]]; then
    export NEUROGRAPH_BIN="$PWD/target/debug/neurograph"
fi
target/pyenv/bin/python -m pytest -q python/tests "$@"
