#!/usr/bin/env bash
# The Python package's checks, run by .ci/run: build the abi3 wheel with maturin (from PyPI),
# install it into a fresh virtual environment, and run the pytest suite there (from outside the
# source tree, so the installed package is what is tested).
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"
target="${CARGO_TARGET_DIR:-$root/target}"
mkdir -p "$target"
venv="$target/python-ci-venv"
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q maturin pytest numpy
# No build isolation: the maturin just installed builds it (on PATH), and the extension has its
# own cargo target dir, kept between runs so that a rebuild is incremental.
PATH="$venv/bin:$PATH" CARGO_TARGET_DIR="$target/python-ext" "$venv/bin/pip" install -q --no-build-isolation ./bindings/python
cd "$target"
"$venv/bin/python" -c 'import recur; print("recur", recur.__version__, "models:", recur.bundled_models())'
"$venv/bin/python" -m pytest -q -p no:cacheprovider "$root/bindings/python/tests"
