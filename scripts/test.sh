#!/usr/bin/env bash
# The one test command: installs the tools the tests drive, then runs the
# format check, the linter and every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
# The connection-flood tests open hundreds of sockets.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo "== cargo fmt --check" >&2
cargo fmt --all --check
echo "== cargo clippy" >&2
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test" >&2
cargo test --workspace
