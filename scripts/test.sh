#!/usr/bin/env bash
# The one test command: installs what the tests need when it is missing, then runs
# formatting, lints and the whole test suite. Safe to run again; later runs are incremental.
#
#   bash scripts/test.sh            # everything
#   bash scripts/test.sh -E 'package(druid-local)'   # extra args go to cargo nextest
#
# Installs (only when missing): Debian's `zookeeper` (with Java), `tansu` (a Kafka-protocol
# broker) from crates.io, and a Python venv with pydruid and confluent-kafka. The tests start
# their own ZooKeeper and broker processes on free loopback ports and stop them when done.
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

step "checking test dependencies"
if [ ! -f /usr/share/java/zookeeper.jar ] || ! command -v java >/dev/null; then
  step "installing ZooKeeper and Java (Debian package zookeeper)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zookeeper >/dev/null
fi

if ! command -v tansu >/dev/null; then
  step "installing the tansu broker from crates.io (about 10 minutes, once)"
  cargo install tansu --locked --features dynostore
fi

VENV="$CACHE/venv"
if ! "$VENV/bin/python" -c 'import pydruid, confluent_kafka' 2>/dev/null; then
  step "creating the Python venv with pydruid and confluent-kafka"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check pydruid confluent-kafka
fi
export TRANQUILITY_PYTHON="$VENV/bin/python"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo doc (broken links fail)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --lib --no-deps --locked --quiet

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast "$@"
  cargo test --workspace --locked --doc
else
  cargo test --workspace --locked --no-fail-fast
fi

# --- JVM client and connectors (jvm/, Maven) ------------------------------------------------
# Each module's tests start a real `tranquility quickstart` from TRANQUILITY_BIN. Dependencies
# go to a local repository in the cache, outside the clone.
step "JVM client and connectors (mvn verify in jvm/)"
if command -v mvn >/dev/null; then
  cargo build -p tranquility-cli --locked --quiet
  export TRANQUILITY_BIN="$(cd "$CARGO_TARGET_DIR" && pwd)/debug/tranquility"
  mvn -B -ntp -f jvm/pom.xml -Dmaven.repo.local="$CACHE/m2" verify
else
  printf '\n!!! SKIPPED: mvn is not installed, so jvm/ (the Java client and the Storm, Flink,\n!!! Spark and Samza connectors) was neither built nor tested. Install Maven to run it.\n\n' >&2
fi
# --- end of the JVM block --------------------------------------------------------------------
