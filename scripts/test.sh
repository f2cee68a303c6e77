#!/usr/bin/env bash
# The one test command: installs what the tests need when it is missing, then runs
# formatting, lints and the whole test suite. Safe to run again; later runs are incremental.
#
#   bash scripts/test.sh            # everything
#   bash scripts/test.sh -E 'package(druid-local)'   # extra args go to cargo nextest
#
# Installs (only when missing): Debian's `zookeeper` and a JDK, `tansu` (a Kafka-protocol
# broker) and `cargo-nextest` from crates.io, and a Python venv with pydruid, sqlalchemy and
# confluent-kafka. The tests start their own ZooKeeper and broker processes on free loopback
# ports and stop them when done.
#
# Tests that replay public peer data (the original Tranquility's configs, Druid's own
# integration-test files) read it from $TRANQUILITY_PEER_DATA or a `shared/peer-data` folder
# beside the clone; without it they skip, and the run ends by listing them.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
CACHE="${TRANQUILITY_CACHE:-$HOME/.cache/tranquility-rs}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
export CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"
export PATH="$CARGO_HOME/bin:$PATH"
TOOLS="$CACHE/tools"
mkdir -p "$CACHE" "$TOOLS"

START=$SECONDS
step() { printf '\n==> [%dm%02ds] %s\n' $(((SECONDS - START) / 60)) $(((SECONDS - START) % 60)) "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# The broker the Kafka tests run. Pinned, with the storage engines the tests use (memory, and
# sqlite for a broker that keeps its data across a restart), built at opt-level 1 without
# debug info: about half the build time of a release build, and fast enough for the tests.
TANSU_VERSION=0.6.0
export TANSU_BIN="${TANSU_BIN:-$TOOLS/tansu-$TANSU_VERSION/bin/tansu}"
install_tansu() {
  local build
  build=$(mktemp -d "$CACHE/tansu-build.XXXXXX")
  CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_DEBUG=false \
    CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_INCREMENTAL=false \
    cargo install tansu --version "=$TANSU_VERSION" --locked --features dynostore,libsql \
    --root "$TOOLS/tansu-$TANSU_VERSION" --target-dir "$build" --quiet
  rm -rf "$build"
}

step "checking test dependencies"
# Curator's recipes and service discovery: the mixed-fleet tests run them against ours.
if [ ! -f /usr/share/java/zookeeper.jar ] || ! command -v javac >/dev/null \
  || [ ! -f /usr/share/java/curator-recipes.jar ] || [ ! -f /usr/share/java/curator-x-discovery.jar ]; then
  step "installing ZooKeeper, a JDK and Curator (Debian packages zookeeper, default-jdk-headless, libcurator-*-java)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zookeeper default-jdk-headless \
    libcurator-recipes-java libcurator-framework-java libcurator-discovery-java >/dev/null
fi

# --- Kafka over TLS ---
# librdkafka is built against Debian's OpenSSL (libssl-dev), and the Kafka TLS tests put
# stunnel4 in front of the test broker, which has no usable TLS listener of its own.
if ! command -v stunnel4 >/dev/null || [ ! -f /usr/include/openssl/ssl.h ] || ! command -v pkg-config >/dev/null; then
  step "installing stunnel4, libssl-dev and pkg-config (Debian packages, Kafka over TLS)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq stunnel4 libssl-dev pkg-config >/dev/null
fi
# --- end Kafka over TLS ---

# The broker builds in the background while the workspace compiles (separate target dirs).
TANSU_JOB=""
if [ ! -x "$TANSU_BIN" ]; then
  step "building the tansu $TANSU_VERSION broker from crates.io in the background (once; see README)"
  install_tansu > "$CACHE/tansu-install.log" 2>&1 &
  TANSU_JOB=$!
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  step "installing cargo-nextest from crates.io (once)"
  CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_DEBUG=false \
    cargo install cargo-nextest --locked --target-dir "$CACHE/nextest-build"
  rm -rf "$CACHE/nextest-build"
fi

VENV="$CACHE/venv"
if ! "$VENV/bin/python" -c 'import pydruid, confluent_kafka, sqlalchemy' 2>/dev/null; then
  step "creating the Python venv with pydruid, sqlalchemy and confluent-kafka"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check pydruid confluent-kafka sqlalchemy
fi
export TRANQUILITY_PYTHON="$VENV/bin/python"

# --- real Druid (tests named real_druid_*; docs/real-druid.md) ---
# Installed from Maven Central into $CACHE/druid once (about 30 s and 140-190 MB a release);
# from then on a missing install fails those tests instead of skipping them.
if ! command -v mvn >/dev/null; then
  step "installing Maven (Debian package maven)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq maven >/dev/null
fi
for release in 28.0.0 33.0.0; do
  if [ ! -f "$CACHE/druid/$release/INSTALLED" ]; then
    step "installing Druid $release from Maven Central (once)"
    began=$SECONDS
    bash scripts/real-druid.sh install "$release"
    printf '    Druid %s installed in %s s\n' "$release" $((SECONDS - began)) >&2
  fi
done
export TRANQUILITY_REAL_DRUID=require
# --- end real Druid ---

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo doc (broken links fail)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --lib --no-deps --locked --quiet

step "building the tests"
cargo nextest run --workspace --locked --no-run

if [ -n "$TANSU_JOB" ]; then
  step "waiting for the tansu build"
  if ! wait "$TANSU_JOB"; then
    tail -n 30 "$CACHE/tansu-install.log" >&2
    echo "building tansu failed (log: $CACHE/tansu-install.log)" >&2
    exit 1
  fi
fi

step "tests"
export TRANQUILITY_SKIPPED_LOG="$CACHE/skipped-tests.txt"
: > "$TRANQUILITY_SKIPPED_LOG"
status=0
cargo nextest run --workspace --locked --no-fail-fast "$@" || status=$?
cargo test --workspace --locked --doc --quiet || status=$?

# --- JVM client and connectors (jvm/, Maven) ------------------------------------------------
# Each module's tests start a real `tranquility quickstart` from TRANQUILITY_BIN. Dependencies
# go to a local repository in the cache, outside the clone.
step "JVM client and connectors (mvn verify in jvm/)"
if command -v mvn >/dev/null; then
  cargo build -p tranquility-cli --locked --quiet
  export TRANQUILITY_BIN="$(cd "$CARGO_TARGET_DIR" && pwd)/debug/tranquility"
  # The frameworks' scratch files (Flink's mini cluster, Spark's and Storm's local dirs) go to
  # a folder of this run, removed afterwards, instead of piling up in /tmp.
  jvm_tmp=$(mktemp -d "$CACHE/jvm-tmp.XXXXXX")
  JAVA_TOOL_OPTIONS="-Djava.io.tmpdir=$jvm_tmp" \
    mvn -B -ntp -f jvm/pom.xml -Dmaven.repo.local="$CACHE/m2" verify || status=$?
  rm -rf "$jvm_tmp"
else
  printf '\n!!! SKIPPED: mvn is not installed, so jvm/ (the Java client and the Storm, Flink,\n!!! Spark and Samza connectors) was neither built nor tested. Install Maven to run it.\n\n' >&2
  status=1
fi
# --- end of the JVM block --------------------------------------------------------------------

if [ -s "$TRANQUILITY_SKIPPED_LOG" ]; then
  step "skipped: tests that need files or services that are not here"
  sort -u "$TRANQUILITY_SKIPPED_LOG" | while IFS=$'\t' read -r test needs remedy; do
    printf '  SKIPPED %s (needs %s)\n' "$test" "$needs" >&2
  done
  cut -f3 "$TRANQUILITY_SKIPPED_LOG" | sort -u | while read -r remedy; do
    printf '  to run them: %s\n' "$remedy" >&2
  done
fi
step "done (exit $status)"
exit "$status"
