#!/usr/bin/env bash
# The full test suite: the C++ core's unit tests and example (CTest, built
# with no Python involved), then the Python suite against the installed package.
# Run from the repository root after `pip install ".[test]"`.
set -euo pipefail
cd "$(dirname "$0")/.."

build=build/cpp-tests
cmake -S . -B "$build" -G Ninja -DTAPEGRAD_BUILD_TESTS=ON -DTAPEGRAD_BUILD_BENCH=ON -DTAPEGRAD_BENCH_LIBTORCH=OFF -DPython_EXECUTABLE="$(command -v python)" >/dev/null
cmake --build "$build" -j 2
ctest --test-dir "$build" --output-on-failure --no-tests=error

# Import the installed package, not the source tree.
python -m pytest tests -q -p no:cacheprovider "$@"
