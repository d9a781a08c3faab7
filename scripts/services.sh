# Throw-away ClickHouse and PostgreSQL servers for the scale-out tests; sourced by
# scripts/test.sh (and usable by hand: `source scripts/services.sh; start_services DIR`).
#
# Both run as children of this shell on free loopback ports, with their data under DIR, and
# are stopped by stop_services (test.sh traps EXIT). They export:
#   TRAILWATCH_TEST_CLICKHOUSE_URL  http://127.0.0.1:PORT
#   TRAILWATCH_TEST_POSTGRES_URL    postgres://postgres@127.0.0.1:PORT/postgres
# Debian's clickhouse-server (18.16, the only one installable here) and PostgreSQL 15 are
# installed with apt-get when missing.
#
# start_cluster DIR starts a replicated ClickHouse cluster beside them: Debian's ZooKeeper
# (3.8) and four servers, cluster `trailwatch` of 2 shards x 2 replicas. It exports
#   TRAILWATCH_TEST_CLUSTER_URL   http://127.0.0.1:PORT (server 1: shard 1, replica 1)
#   TRAILWATCH_TEST_CLUSTER_DIR   DIR, whose DIR/clickhouse-N/{config.xml,pid,http} are the
#     servers N = 1..4 (shard 1: 1, 2; shard 2: 3, 4), so a test can kill one and start it
#     again (restart_cluster_node, or clickhouse-server --config-file=…/config.xml).

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

apt_install() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

pg_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

# clickhouse_config DIR HTTP_PORT TCP_PORT [XML]: a server's configuration under DIR, with
# XML added to it (a cluster's ZooKeeper, macros and remote_servers).
clickhouse_config() {
  local dir=$1 http=$2 tcp=$3 extra=${4:-}
  mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas"
  cat > "$dir/config.xml" <<EOF
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>$dir/server.log</log><errorlog>$dir/error.log</errorlog><console>0</console></logger>
  <http_port>$http</http_port>
  <tcp_port>$tcp</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>$dir/data/</path>
  <tmp_path>$dir/tmp/</tmp_path>
  <user_files_path>$dir/user_files/</user_files_path>
  <format_schema_path>$dir/format_schemas/</format_schema_path>
  <users_config>$dir/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
  <max_concurrent_queries>200</max_concurrent_queries>
  $extra
</yandex>
EOF
  cat > "$dir/users.xml" <<'EOF'
<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
    <profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
    <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
EOF
  echo "$http" > "$dir/http"
}

# run_clickhouse DIR: starts the server configured in DIR and waits until it answers; its
# pid in $CLICKHOUSE_STARTED and DIR/pid.
run_clickhouse() {
  local dir=$1 url
  clickhouse-server --config-file="$dir/config.xml" >>"$dir/stdout.log" 2>&1 &
  CLICKHOUSE_STARTED=$!
  echo "$CLICKHOUSE_STARTED" > "$dir/pid"
  url="http://127.0.0.1:$(cat "$dir/http")"
  for _ in $(seq 1 120); do
    if curl -sf "$url/?query=SELECT%201" >/dev/null 2>&1; then
      return 0
    fi
    if ! kill -0 "$CLICKHOUSE_STARTED" 2>/dev/null; then break; fi
    sleep 0.5
  done
  echo "services.sh: ClickHouse in $dir did not start; its logs:" >&2
  tail -n 30 "$dir/stdout.log" "$dir/error.log" >&2 2>/dev/null || true
  return 1
}

start_clickhouse() {
  local dir=$1 url
  command -v clickhouse-server >/dev/null 2>&1 || apt_install clickhouse-server
  clickhouse_config "$dir" "$(free_port)" "$(free_port)"
  run_clickhouse "$dir" || return 1
  CLICKHOUSE_PID=$CLICKHOUSE_STARTED
  url="http://127.0.0.1:$(cat "$dir/http")"
  export TRAILWATCH_TEST_CLICKHOUSE_URL=$url
  echo "ClickHouse $(curl -s "$url/?query=SELECT%20version()") at $url"
}

# start_cluster DIR: ZooKeeper and four ClickHouse servers (see the top of this file).
start_cluster() {
  local dir=$1 zk up="" n
  command -v clickhouse-server >/dev/null 2>&1 || apt_install clickhouse-server
  [ -f /usr/share/java/zookeeper.jar ] || apt_install zookeeper
  mkdir -p "$dir/zookeeper/data"
  zk=$(free_port)
  cat > "$dir/zookeeper/zoo.cfg" <<EOF
tickTime=2000
dataDir=$dir/zookeeper/data
clientPort=$zk
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=ruok
EOF
  # The jar's manifest names its dependencies (Debian's layout): no service, no systemd.
  java -Xmx512m -cp /usr/share/java/zookeeper.jar org.apache.zookeeper.server.ZooKeeperServerMain \
    "$dir/zookeeper/zoo.cfg" >"$dir/zookeeper/stdout.log" 2>&1 &
  ZOOKEEPER_PID=$!
  for _ in $(seq 1 120); do
    if python3 -c 'import socket, sys; s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1); s.sendall(b"ruok"); sys.exit(s.recv(4) != b"imok")' "$zk" 2>/dev/null; then
      up=1
      break
    fi
    kill -0 "$ZOOKEEPER_PID" 2>/dev/null || break
    sleep 0.5
  done
  if [ -z "$up" ]; then
    echo "services.sh: ZooKeeper did not start:" >&2
    tail -n 30 "$dir/zookeeper/stdout.log" >&2
    return 1
  fi
  local http=() tcp=() remote="<remote_servers><trailwatch>"
  for n in 1 2 3 4; do
    http[n]=$(free_port)
    tcp[n]=$(free_port)
  done
  for n in 1 3; do
    remote+="<shard><internal_replication>true</internal_replication>"
    remote+="<replica><host>127.0.0.1</host><port>${tcp[n]}</port></replica>"
    remote+="<replica><host>127.0.0.1</host><port>${tcp[n + 1]}</port></replica></shard>"
  done
  remote+="</trailwatch></remote_servers>"
  CLUSTER_DIR=$dir
  for n in 1 2 3 4; do
    clickhouse_config "$dir/clickhouse-$n" "${http[n]}" "${tcp[n]}" "$remote
  <zookeeper><node><host>127.0.0.1</host><port>$zk</port></node></zookeeper>
  <macros><shard>$(((n + 1) / 2))</shard><replica>r$(((n + 1) % 2 + 1))</replica></macros>
  <interserver_http_port>$(free_port)</interserver_http_port>
  <interserver_http_host>127.0.0.1</interserver_http_host>
  <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>"
    run_clickhouse "$dir/clickhouse-$n" || return 1
  done
  export TRAILWATCH_TEST_CLUSTER_URL="http://127.0.0.1:${http[1]}"
  export TRAILWATCH_TEST_CLUSTER_DIR=$dir
  echo "ClickHouse cluster trailwatch (2 shards x 2 replicas, ZooKeeper at 127.0.0.1:$zk) at $TRAILWATCH_TEST_CLUSTER_URL"
}

# restart_cluster_node DIR N: starts server N of the cluster in DIR again.
restart_cluster_node() {
  run_clickhouse "$1/clickhouse-$2"
}

stop_cluster() {
  local node
  if [ -n "${CLUSTER_DIR:-}" ]; then
    for node in "$CLUSTER_DIR"/clickhouse-*; do
      if [ -f "$node/pid" ]; then kill "$(cat "$node/pid")" 2>/dev/null || true; fi
    done
    CLUSTER_DIR=
  fi
  if [ -n "${ZOOKEEPER_PID:-}" ]; then
    kill "$ZOOKEEPER_PID" 2>/dev/null || true
    wait "$ZOOKEEPER_PID" 2>/dev/null || true
    ZOOKEEPER_PID=
  fi
}

start_postgres() {
  local dir=$1
  [ -n "$(pg_bin)" ] || apt_install postgresql
  local bin port
  bin=$(pg_bin)
  port=$(free_port)
  mkdir -p "$dir"
  # initdb refuses to run as root: the cluster belongs to the postgres user then.
  local as=()
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir "$dir" postgres
    chown postgres "$dir"
    as=(runuser -u postgres --)
  fi
  "${as[@]}" "$bin/initdb" -D "$dir/data" -A trust -U postgres --no-sync >"$dir/initdb.log" 2>&1 || {
    echo "services.sh: initdb failed:" >&2; cat "$dir/initdb.log" >&2; return 1; }
  "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null || {
    echo "services.sh: PostgreSQL did not start:" >&2; tail -n 30 "$dir/server.log" >&2; return 1; }
  PG_AS=("${as[@]}")
  PG_DIR=$dir
  export TRAILWATCH_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
  echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') at 127.0.0.1:$port"
}

start_services() {
  local dir=$1
  mkdir -p "$dir"
  start_clickhouse "$dir/clickhouse"
  start_postgres "$dir/postgres"
  export TRAILWATCH_TEST_SCALEOUT=require
}

stop_services() {
  stop_cluster
  if [ -n "${CLICKHOUSE_PID:-}" ]; then
    kill "$CLICKHOUSE_PID" 2>/dev/null || true
    wait "$CLICKHOUSE_PID" 2>/dev/null || true
    CLICKHOUSE_PID=
  fi
  if [ -n "${PG_DIR:-}" ]; then
    "${PG_AS[@]}" "$(pg_bin)/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    PG_DIR=
  fi
}
