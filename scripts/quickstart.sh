#!/usr/bin/env bash
# The quickstart: builds the `tranquility` command (release) and runs
# `tranquility quickstart`, druid-local and Tranquility Server in one process with a sample
# dataSource. Extra args go to the command, e.g.
#
#   bash scripts/quickstart.sh --port 8300 --druid-port 8091
#
# Installs (only when missing): a C linker (Debian's build-essential) and Rust (rustup).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
CACHE="${TRANQUILITY_CACHE:-$HOME/.cache/tranquility-rs}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
export CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"
export PATH="$CARGO_HOME/bin:$PATH"
mkdir -p "$CACHE"

step() { printf '\n==> %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v cc >/dev/null; then
  step "installing a C toolchain (Debian package build-essential)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential >/dev/null
fi

if ! command -v cargo >/dev/null; then
  step "installing Rust with rustup (https://rustup.rs)"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
fi

step "building tranquility (release; the first build takes ten minutes or more on a small machine)"
cargo build --release --locked -p tranquility-cli
exec "$CARGO_TARGET_DIR/release/tranquility" quickstart "$@"
