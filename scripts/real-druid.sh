#!/usr/bin/env bash
# A real Apache Druid for the test suite, installed from Maven Central and run as a small
# cluster on free loopback ports.
#
#   scripts/real-druid.sh install VERSION     # resolve Druid with Maven into the cache (once)
#   scripts/real-druid.sh start VERSION DIR   # ZooKeeper + Druid; logs, pids and data in DIR
#   scripts/real-druid.sh stop DIR            # stop what `start` started in DIR
#
# `install` lays Druid out as its own distribution does: `lib/` holds the runtime classpath of
# `org.apache.druid:druid-services` (under Druid's own dependency management) and each
# extension gets `extensions/<name>/`. Nothing is built; Maven fetches only from its
# registry into a repository of our own, so ~/.m2 is never read or written. The install goes
# to `${TRANQUILITY_CACHE:-$HOME/.cache/tranquility-rs}/druid/<version>`.
#
# The cluster: Debian's ZooKeeper, a Coordinator that is also the Overlord (with Derby as
# metadata store, local deep storage), one process running tasks (a MiddleManager with up to
# two peons up to 30, an Indexer from 31: see data_server_for), a Broker and a Historical.
# `start` prints the URLs (and writes them to DIR/cluster.env) once the Overlord, the worker,
# the Broker and the Historical serve. Ports may be given as DRUID_PORT_<NAME> (ZK, DERBY,
# COORDINATOR, INDEXER for the worker, BROKER, HISTORICAL, PEON1, PEON2); any missing one is a
# free loopback port. DRUID_ZOOKEEPER=host:port uses a ZooKeeper that is already running
# instead of starting one. JAVA_HOME picks the JVM.
set -euo pipefail

CACHE="${TRANQUILITY_CACHE:-$HOME/.cache/tranquility-rs}"
DRUID_CACHE="$CACHE/druid"
M2="$DRUID_CACHE/m2"
DEP_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.6.1"
ZK_CLASSPATH="${ZOOKEEPER_CLASSPATH:-/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar}"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"

say() { printf 'real-druid: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# The process that runs tasks. Up to 30 a MiddleManager forks a peon JVM per task: an
# index_realtime task answers queries for its rows only from its own peon (in an Indexer the
# Broker finds its segments but the Indexer answers "Could not find segment walker").
# From 31 an Indexer runs the (appenderator-based) tasks in threads, which is lighter.
data_server_for() {
  local major=${1%%.*}
  if [ "$major" -ge 31 ] 2>/dev/null; then echo indexer; else echo middleManager; fi
}

# Extensions each release needs for what the tests run: releases up to 30 ingest through
# index_realtime tasks (all in core); 31 and later through Kafka supervisors.
extensions_for() {
  local major=${1%%.*}
  if [ "$major" -ge 31 ] 2>/dev/null; then echo "druid-kafka-indexing-service"; fi
}

# A pom whose runtime classpath is `artifact` resolved under Druid's dependency management.
# sigar (a native system-metrics library Druid's SysMonitor uses) is served only by a
# third-party repository, so it is left out; nothing here enables SysMonitor.
write_pom() {
  local file=$1 version=$2 group=$3 artifact=$4
  cat > "$file" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>tranquility-rs.real-druid</groupId>
  <artifactId>$artifact-runtime</artifactId>
  <version>$version</version>
  <packaging>pom</packaging>
  <dependencyManagement>
    <dependencies>
      <dependency>
        <groupId>org.apache.druid</groupId><artifactId>druid</artifactId>
        <version>$version</version><type>pom</type><scope>import</scope>
      </dependency>
    </dependencies>
  </dependencyManagement>
  <dependencies>
    <dependency>
      <groupId>$group</groupId><artifactId>$artifact</artifactId><version>$version</version>
      <exclusions>
        <exclusion><groupId>org.hyperic</groupId><artifactId>sigar</artifactId></exclusion>
      </exclusions>
    </dependency>
  </dependencies>
</project>
EOF
}

# Copies the runtime closure of `artifact` into `dest`, or fails showing Maven's error.
resolve() {
  local work=$1 version=$2 group=$3 artifact=$4 dest=$5
  local pom="$work/$artifact.pom.xml" log="$work/$artifact.maven.log"
  write_pom "$pom" "$version" "$group" "$artifact"
  if ! mvn -B -f "$pom" -Dmaven.repo.local="$M2" "$DEP_PLUGIN:copy-dependencies" \
      -DincludeScope=runtime -DoutputDirectory="$dest" >"$log" 2>&1; then
    grep -E '^\[ERROR\]' "$log" | head -5 >&2 || tail -20 "$log" >&2
    die "Maven could not resolve $group:$artifact:$version (log: $log)"
  fi
}

cmd_install() {
  local version=${1:?usage: install VERSION}
  local home="$DRUID_CACHE/$version"
  if [ -f "$home/INSTALLED" ]; then
    say "Druid $version is installed in $home"
    return 0
  fi
  command -v mvn >/dev/null || die "mvn is not installed (Debian package maven)"
  local started work
  started=$(now)
  work="$DRUID_CACHE/.install-$version-$$"
  rm -rf "$work" && mkdir -p "$work/lib" "$work/extensions" "$M2"
  say "resolving org.apache.druid:druid-services:$version with Maven (repository $M2)"
  resolve "$work" "$version" org.apache.druid druid-services "$work/lib"
  local ext
  for ext in $(extensions_for "$version"); do
    say "resolving extension $ext"
    resolve "$work" "$version" org.apache.druid.extensions "$ext" "$work/extensions/$ext"
    # Jars the core already has load from lib/; keeping one copy avoids split classes.
    local jar
    for jar in "$work/extensions/$ext"/*.jar; do
      if [ -f "$work/lib/$(basename "$jar")" ]; then rm "$jar"; fi
    done
  done
  {
    echo "version=$version"
    echo "extensions=$(extensions_for "$version" | tr '\n' ' ')"
    echo "lib_jars=$(find "$work/lib" -name '*.jar' | wc -l)"
    echo "seconds=$(since "$started")"
  } > "$work/INSTALLED.tmp"
  rm -rf "$home" && mv "$work" "$home"
  mv "$home/INSTALLED.tmp" "$home/INSTALLED"
  say "installed Druid $version in $home ($(du -sh "$home" | cut -f1), $(since "$started") s)"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# JVM flags every Druid process gets. Druid reaches into JDK internals (direct buffers, its
# own memory mapping), which Java 17 refuses without these opens; C1 only and the serial
# collector keep a small cluster's start cheap on two cores.
JVM_COMMON=(
  -XX:+ExitOnOutOfMemoryError -XX:+UseSerialGC -XX:TieredStopAtLevel=1
  -Duser.timezone=UTC -Dfile.encoding=UTF-8
  -Djava.util.logging.manager=org.apache.logging.log4j.jul.LogManager
  --add-exports=java.base/jdk.internal.misc=ALL-UNNAMED
  --add-exports=java.base/jdk.internal.ref=ALL-UNNAMED
  --add-opens=java.base/java.nio=ALL-UNNAMED
  --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
  --add-opens=java.base/jdk.internal.ref=ALL-UNNAMED
  --add-opens=java.base/java.io=ALL-UNNAMED
  --add-opens=java.base/java.lang=ALL-UNNAMED
  --add-opens=jdk.management/com.sun.management.internal=ALL-UNNAMED
)

# Heap and direct memory per process: about 3.5 GiB of limits for the whole cluster.
jvm_memory() {
  case $1 in
    coordinator) echo "-Xms128m -Xmx512m" ;;
    indexer) echo "-Xms128m -Xmx768m -XX:MaxDirectMemorySize=256m" ;;
    middleManager) echo "-Xms64m -Xmx128m" ;;
    peon) echo "-Xms64m -Xmx384m -XX:MaxDirectMemorySize=256m" ;;
    broker) echo "-Xms128m -Xmx512m -XX:MaxDirectMemorySize=256m" ;;
    historical) echo "-Xms128m -Xmx384m -XX:MaxDirectMemorySize=256m" ;;
  esac
}

write_configs() {
  local dir=$1 home=$2 version=$3
  local var="$dir/var" conf="$dir/conf"
  local loadlist
  loadlist=$(extensions_for "$version" | awk 'BEGIN{printf "["} {printf "%s\"%s\"", (NR>1?",":""), $0} END{printf "]"}')
  mkdir -p "$conf/_common" "$var/tmp" "$var/segments" "$var/indexing-logs" "$var/task" \
    "$var/segment-cache" "$var/processing"
  cat > "$conf/_common/common.runtime.properties" <<EOF
druid.host=127.0.0.1
druid.bindOnHost=true
druid.extensions.directory=$home/extensions
druid.extensions.loadList=$loadlist
druid.zk.service.host=$ZK_CONNECT
druid.zk.paths.base=/druid
druid.metadata.storage.type=derby
druid.metadata.storage.connector.connectURI=jdbc:derby://127.0.0.1:$PORT_DERBY/$var/metadata.db;create=true
druid.metadata.storage.connector.host=127.0.0.1
druid.metadata.storage.connector.port=$PORT_DERBY
druid.storage.type=local
druid.storage.storageDirectory=$var/segments
druid.indexer.logs.type=file
druid.indexer.logs.directory=$var/indexing-logs
druid.selectors.indexing.serviceName=druid/overlord
druid.selectors.coordinator.serviceName=druid/coordinator
druid.emitter=noop
druid.sql.enable=true
druid.lookup.enableLookupSyncOnStartup=false
druid.processing.buffer.sizeBytes=33554432
druid.processing.numThreads=1
druid.processing.numMergeBuffers=2
druid.processing.tmpDir=$var/processing
druid.server.http.numThreads=16
druid.indexer.task.chathandler.type=announce
druid.segment.handoff.pollDuration=PT2S
EOF
  cat > "$conf/_common/log4j2.xml" <<'XML'
<?xml version="1.0" encoding="UTF-8" ?>
<Configuration status="WARN">
  <Appenders>
    <Console name="Console" target="SYSTEM_OUT">
      <PatternLayout pattern="%d{ISO8601} %p [%t] %c - %m%n"/>
    </Console>
  </Appenders>
  <Loggers>
    <Root level="info"><AppenderRef ref="Console"/></Root>
  </Loggers>
</Configuration>
XML
  mkdir -p "$conf/coordinator" "$conf/indexer" "$conf/middleManager" "$conf/broker" \
    "$conf/historical"
  cat > "$conf/coordinator/runtime.properties" <<EOF
druid.service=druid/coordinator
druid.plaintextPort=$PORT_COORDINATOR
druid.coordinator.startDelay=PT5S
druid.coordinator.period=PT5S
druid.manager.segments.pollDuration=PT5S
druid.coordinator.asOverlord.enabled=true
druid.coordinator.asOverlord.overlordService=druid/overlord
druid.indexer.queue.startDelay=PT0S
druid.indexer.runner.type=httpRemote
druid.indexer.storage.type=metadata
druid.metadata.storage.connector.createTables=true
EOF
  cat > "$conf/indexer/runtime.properties" <<EOF
druid.service=druid/indexer
druid.plaintextPort=$PORT_INDEXER
druid.worker.capacity=4
druid.indexer.task.baseTaskDir=$var/task
druid.indexer.task.hadoopWorkingPath=$var/hadoop-tmp
druid.indexer.task.restoreTasksOnRestart=false
druid.server.http.numThreads=40
EOF
  local peon_opts
  # shellcheck disable=SC2046 # jvm_memory's words are separate flags
  peon_opts=$(printf '"%s",' -server $(jvm_memory peon) "${JVM_COMMON[@]}" \
    "-Djava.io.tmpdir=$var/tmp")
  cat > "$conf/middleManager/runtime.properties" <<EOF
druid.service=druid/middleManager
druid.plaintextPort=$PORT_INDEXER
druid.worker.capacity=2
druid.indexer.runner.javaCommand=$JAVA
druid.indexer.runner.javaOptsArray=[${peon_opts%,}]
druid.indexer.runner.ports=[$PORT_PEON1,$PORT_PEON2]
druid.indexer.task.baseTaskDir=$var/task
druid.indexer.task.hadoopWorkingPath=$var/hadoop-tmp
druid.indexer.task.restoreTasksOnRestart=false
EOF
  cat > "$conf/broker/runtime.properties" <<EOF
druid.service=druid/broker
druid.plaintextPort=$PORT_BROKER
druid.broker.http.numConnections=5
druid.broker.cache.useCache=false
druid.broker.cache.populateCache=false
EOF
  cat > "$conf/historical/runtime.properties" <<EOF
druid.service=druid/historical
druid.plaintextPort=$PORT_HISTORICAL
druid.server.maxSize=10000000000
druid.segmentCache.locations=[{"path":"$var/segment-cache","maxSize":10000000000}]
EOF
}

# Starts one process in DIR, in the background, its output in DIR/logs and its pid in DIR/pids.
launch() {
  local dir=$1 name=$2; shift 2
  (cd "$dir" && exec nohup "$@" > "$dir/logs/$name.log" 2>&1 < /dev/null) &
  echo $! > "$dir/pids/$name.pid"
}

launch_druid() {
  local dir=$1 home=$2 service=$3
  # shellcheck disable=SC2046 # jvm_memory's words are separate flags
  launch "$dir" "$service" "$JAVA" -server $(jvm_memory "$service") "${JVM_COMMON[@]}" \
    -Djava.io.tmpdir="$dir/var/tmp" -Dderby.stream.error.file="$dir/logs/derby.log" \
    -cp "$dir/conf/_common:$dir/conf/$service:$home/lib/*" \
    org.apache.druid.cli.Main server "$service"
}

http_ok() { curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null; }

# Waits until the check succeeds; fails naming `what` and showing a dead process's log.
wait_for() {
  local dir=$1 what=$2 timeout=$3; shift 3
  local deadline=$(( $(date +%s) + timeout )) name
  until "$@"; do
    for name in zookeeper coordinator indexer middleManager broker historical; do
      local pidfile="$dir/pids/$name.pid"
      if [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        tail -30 "$dir/logs/$name.log" >&2
        die "$name exited while waiting for $what (log: $dir/logs/$name.log)"
      fi
    done
    if [ "$(date +%s)" -ge "$deadline" ]; then
      die "$what not ready after ${timeout}s (logs in $dir/logs)"
    fi
    sleep 0.5
  done
}

zk_serving() {
  local reply
  reply=$( (exec 3<>"/dev/tcp/127.0.0.1/$PORT_ZK" && echo srvr >&3 && cat <&3) 2>/dev/null ) || return 1
  case $reply in *"Mode: standalone"*) return 0 ;; *) return 1 ;; esac
}
overlord_leads() { curl -fsS --max-time 2 "$OVERLORD_URL/druid/indexer/v1/isLeader" 2>/dev/null | grep -q true; }
indexer_registered() {
  curl -fsS --max-time 2 "$OVERLORD_URL/druid/indexer/v1/workers" 2>/dev/null | grep -q ":$PORT_INDEXER\""
}

cmd_start() {
  local version=${1:?usage: start VERSION DIR} dir=${2:?usage: start VERSION DIR}
  local home="$DRUID_CACHE/$version"
  [ -f "$home/INSTALLED" ] || die "Druid $version is not installed: run $0 install $version"
  command -v curl >/dev/null || die "curl is needed to check the cluster"
  if [ -z "${DRUID_ZOOKEEPER:-}" ] && [ ! -f "${ZK_CLASSPATH%%:*}" ]; then
    die "ZooKeeper is not installed (Debian package zookeeper)"
  fi
  mkdir -p "$dir/logs" "$dir/pids"
  dir=$(cd "$dir" && pwd)
  if ls "$dir/pids/"*.pid >/dev/null 2>&1; then die "$dir already holds a cluster: stop it first"; fi
  local started name
  started=$(now)
  # A start that fails half-way stops what it had started.
  trap 'say "start failed: stopping what had started"; cmd_stop "$dir"' EXIT
  for name in ZK DERBY COORDINATOR INDEXER BROKER HISTORICAL PEON1 PEON2; do
    local given="DRUID_PORT_$name"
    printf -v "PORT_$name" '%s' "${!given:-$(free_port)}"
  done
  OVERLORD_URL="http://127.0.0.1:$PORT_COORDINATOR"
  local broker_url="http://127.0.0.1:$PORT_BROKER"

  if [ -n "${DRUID_ZOOKEEPER:-}" ]; then
    ZK_CONNECT=$DRUID_ZOOKEEPER
  else
    ZK_CONNECT="127.0.0.1:$PORT_ZK"
  fi
  write_configs "$dir" "$home" "$version"
  if [ -z "${DRUID_ZOOKEEPER:-}" ]; then
    printf 'tickTime=2000\ndataDir=%s\nclientPort=%s\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n4lw.commands.whitelist=ruok,srvr,stat,mntr\n' \
      "$dir/var/zookeeper" "$PORT_ZK" > "$dir/conf/zoo.cfg"
    launch "$dir" zookeeper "$JAVA" -Xmx128m -cp "$ZK_CLASSPATH" \
      org.apache.zookeeper.server.ZooKeeperServerMain "$dir/conf/zoo.cfg"
    wait_for "$dir" ZooKeeper 60 zk_serving
  fi
  for name in coordinator "$(data_server_for "$version")" broker historical; do
    launch_druid "$dir" "$home" "$name"
  done
  say "Druid $version starting in $dir (logs in $dir/logs)"
  wait_for "$dir" "the Overlord" 240 overlord_leads
  wait_for "$dir" "the $(data_server_for "$version")" 240 indexer_registered
  wait_for "$dir" "the Broker" 240 http_ok "$broker_url/druid/broker/v1/readiness"
  wait_for "$dir" "the Historical" 240 http_ok "http://127.0.0.1:$PORT_HISTORICAL/druid/historical/v1/readiness"
  {
    echo "DRUID_VERSION=$version"
    echo "OVERLORD_URL=$OVERLORD_URL"
    echo "BROKER_URL=$broker_url"
    echo "COORDINATOR_URL=$OVERLORD_URL"
    echo "WORKER_URL=http://127.0.0.1:$PORT_INDEXER"
    echo "HISTORICAL_URL=http://127.0.0.1:$PORT_HISTORICAL"
    echo "ZOOKEEPER=$ZK_CONNECT"
    echo "STARTED_IN_SECONDS=$(since "$started")"
  } > "$dir/cluster.env"
  trap - EXIT
  cat "$dir/cluster.env"
}

# Sends SIGTERM to the given pids, waits up to 10 s, then kills what still runs.
terminate() {
  [ $# -gt 0 ] || return 0
  kill "$@" 2>/dev/null || true
  local _ pid alive
  for _ in $(seq 1 50); do
    alive=""
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive="$alive $pid"; done
    [ -n "$alive" ] || return 0
    sleep 0.2
  done
  say "still running 10 s after SIGTERM, killing:$alive"
  # shellcheck disable=SC2086 # one word per pid
  kill -9 $alive 2>/dev/null || true
}

cmd_stop() {
  local dir=${1:?usage: stop DIR} name pid pids=() children=()
  [ -d "$dir/pids" ] || { say "no cluster in $dir"; return 0; }
  # The Druid processes together, then ZooKeeper (so they can leave it cleanly).
  for name in broker historical indexer middleManager coordinator; do
    [ -f "$dir/pids/$name.pid" ] || continue
    pid=$(cat "$dir/pids/$name.pid")
    pids+=("$pid")
    # A MiddleManager's peons are its children; any it leaves behind is killed after it.
    # shellcheck disable=SC2207 # one word per pid
    children+=($(pgrep -P "$pid" 2>/dev/null || true))
  done
  terminate "${pids[@]}"
  if [ ${#children[@]} -gt 0 ]; then kill -9 "${children[@]}" 2>/dev/null || true; fi
  if [ -f "$dir/pids/zookeeper.pid" ]; then terminate "$(cat "$dir/pids/zookeeper.pid")"; fi
  rm -f "$dir/pids/"*.pid
  say "stopped the cluster in $dir"
}

case "${1:-}" in
  install) shift; cmd_install "$@" ;;
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
esac
