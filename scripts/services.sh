# Throw-away ClickHouse and PostgreSQL servers for the scale-out tests; sourced by
# scripts/test.sh (and usable by hand: `source scripts/services.sh; start_services DIR`).
#
# Both run as children of this shell on free loopback ports, with their data under DIR, and
# are stopped by stop_services (test.sh traps EXIT). They export:
#   TRAILWATCH_TEST_CLICKHOUSE_URL  http://127.0.0.1:PORT
#   TRAILWATCH_TEST_POSTGRES_URL    postgres://postgres@127.0.0.1:PORT/postgres
# Debian's clickhouse-server (18.16, the only one installable here) and PostgreSQL 15 are
# installed with apt-get when missing.

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

start_clickhouse() {
  local dir=$1
  command -v clickhouse-server >/dev/null 2>&1 || apt_install clickhouse-server
  local http tcp
  http=$(free_port)
  tcp=$(free_port)
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
  clickhouse-server --config-file="$dir/config.xml" >"$dir/stdout.log" 2>&1 &
  CLICKHOUSE_PID=$!
  local url="http://127.0.0.1:$http"
  for _ in $(seq 1 120); do
    if curl -sf "$url/?query=SELECT%201" >/dev/null 2>&1; then
      export TRAILWATCH_TEST_CLICKHOUSE_URL=$url
      echo "ClickHouse $(curl -s "$url/?query=SELECT%20version()") at $url"
      return 0
    fi
    if ! kill -0 "$CLICKHOUSE_PID" 2>/dev/null; then break; fi
    sleep 0.5
  done
  echo "services.sh: ClickHouse did not start; its logs:" >&2
  tail -n 30 "$dir/stdout.log" "$dir/error.log" >&2 2>/dev/null || true
  return 1
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
