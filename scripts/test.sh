#!/usr/bin/env bash
# The one command that runs every test: setup, then the whole cargo test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --all-targets --no-fail-fast "$@"
# Lints are part of the suite (STYLE.md rule 13).
cargo clippy --all-targets -- -D warnings
