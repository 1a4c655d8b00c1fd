#!/usr/bin/env bash
# The compose topology (docker-compose.yml) without Docker, e.g. on a VM: PostgreSQL, the Temporal
# server on it, the Temporal UI, an S3 server (versitygw) as the shared blob store, the demo APIs,
# worker processes and the MCP HTTP server, each a plain process of this machine.
#
#   deploy/native/cluster.sh up        install what is missing, start what is not running, wait until healthy
#   deploy/native/cluster.sh down      stop everything (state is kept: the next `up` continues every job)
#   deploy/native/cluster.sh down SERVICE...   stop only these (postgres, temporal, s3, ui, demo-apis, worker-N, mcp)
#   deploy/native/cluster.sh status    what runs, where; exits 1 if anything is down
#   deploy/native/cluster.sh install   only install/build the binaries
#   deploy/native/cluster.sh env       the ports and addresses, as NAME=value lines
#   deploy/native/cluster.sh config    only write the settings (<state>/config.json, temporal.env)
#
# Same inputs as compose: the product's settings are deploy/config.json (compose service addresses
# are mapped to this machine's by deploy/native/config.ts); the secrets are deploy/.env (product)
# and deploy/infra.env (PostgreSQL, S3 root), copied from their .example files and filled in.
# The same scripts create the schema (deploy/temporal-schema.sh), the namespace and search
# attributes (deploy/temporal-namespace.ts) and the bucket and user (deploy/s3-init.sh).
#
# Binaries are built from the Go module proxy with `go install` (Temporal server and SQL tool
# v1.31.0, UI server v2.49.1, versitygw v1.8.0: the versions compose pins) into
# ${XDG_CACHE_HOME:-~/.cache}/durable-codemode/<tool>-<version>/, outside the clone, so they are
# built once per machine (~6 min on 2 cores). PostgreSQL comes from Debian (`apt-get install
# postgresql` when root); it runs as the postgres user when this script runs as root.
#
# Knobs (environment):
#   DCM_NATIVE_DIR      state: databases, objects, logs, pids (default: <repo>/.durable-codemode/native)
#   DCM_PORT_BASE       ports BASE..BASE+14 instead of the standard ones (must stay below 32768:
#                       Temporal stores its membership ports as a SQL smallint). Kept in the state folder.
#   DCM_CONFIG          the product settings (default deploy/config.json)
#   DCM_ENV_FILE        product secrets (default deploy/.env)
#   DCM_INFRA_ENV_FILE  infrastructure secrets (default deploy/infra.env)
#   DCM_WORKERS         worker processes (default 2, compose's replicas)
#   DCM_MCP_HOST        the MCP server's bind address (default: the config's http.host)
#   DCM_BIND_HOST       where the infrastructure listens (default 127.0.0.1)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE="${DCM_NATIVE_DIR:-$REPO/.durable-codemode/native}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/durable-codemode"
SOURCE_CONFIG="${DCM_CONFIG:-$REPO/deploy/config.json}"
ENV_FILE="${DCM_ENV_FILE:-$REPO/deploy/.env}"
INFRA_ENV_FILE="${DCM_INFRA_ENV_FILE:-$REPO/deploy/infra.env}"
WORKERS="${DCM_WORKERS:-2}"
BIND="${DCM_BIND_HOST:-127.0.0.1}"

# name version Go package: the versions compose's images pin (test/unit/compose.test.ts checks it).
TOOLS=(
  'temporal-server v1.31.0 go.temporal.io/server/cmd/server'
  'temporal-sql-tool v1.31.0 go.temporal.io/server/cmd/tools/sql'
  'temporal-ui-server v2.49.1 github.com/temporalio/ui-server/v2/cmd/server'
  'versitygw v1.8.0 github.com/versity/versitygw/cmd/versitygw'
)

# Port name, standard port, offset from DCM_PORT_BASE. The Temporal names are the variables of
# the server's embedded config template, the one the temporalio/server image renders.
PORTS=(
  'DB_PORT 5432 0'
  'FRONTEND_GRPC_PORT 7233 1'
  'FRONTEND_HTTP_PORT 7243 2'
  'FRONTEND_MEMBERSHIP_PORT 6933 3'
  'HISTORY_GRPC_PORT 7234 4'
  'HISTORY_MEMBERSHIP_PORT 6934 5'
  'MATCHING_GRPC_PORT 7235 6'
  'MATCHING_MEMBERSHIP_PORT 6935 7'
  'WORKER_GRPC_PORT 7239 8'
  'WORKER_MEMBERSHIP_PORT 6939 9'
  'S3_PORT 7070 10'
  'UI_PORT 8080 11'
  'MCP_PORT 3000 12'
  'CRM_PORT 4001 13'
  'SHEETS_PORT 4002 14'
)

log() { printf 'native: %s\n' "$*" >&2; }
die() {
  printf 'native: ERROR: %s\n' "$*" >&2
  exit 1
}

# ---------------------------------------------------------------------------------------------
# Installing

tool_dir() { echo "$CACHE/$1-$2"; }
tool_bin() { # name → the cached binary
  local t name version
  for t in "${TOOLS[@]}"; do
    read -r name version _ <<<"$t"
    if [ "$name" = "$1" ]; then
      echo "$(tool_dir "$name" "$version")/$name"
      return
    fi
  done
  die "unknown tool $1"
}

install_tools() {
  local t name version package dir tmp start
  mkdir -p "$CACHE"
  # Two `up`s at once (test projects) must not build into the same folder.
  exec 9>"$CACHE/.install.lock"
  flock 9
  for t in "${TOOLS[@]}"; do
    read -r name version package <<<"$t"
    dir="$(tool_dir "$name" "$version")"
    [ -x "$dir/$name" ] && continue
    command -v go >/dev/null || die "$name $version is not built yet and there is no Go toolchain to build it: install Go (https://go.dev/dl) and run this again"
    log "building $name $version (go install $package@$version; a few minutes)"
    start=$SECONDS
    tmp="$(mktemp -d "$CACHE/.build.XXXXXX")"
    GOBIN="$tmp" GOFLAGS="${GOFLAGS:--buildvcs=false}" go install "$package@$version" || {
      rm -rf "$tmp"
      die "go install $package@$version failed (output above); check access to the Go module proxy (go env GOPROXY)"
    }
    rm -rf "$dir" && mkdir -p "$dir" && mv "$tmp"/* "$dir/$name" && rm -rf "$tmp"
    log "built $name $version in $((SECONDS - start)) s"
  done
  flock -u 9
  install_postgres
}

pg_bindir() {
  local d
  if [ -n "${DCM_PG_BINDIR:-}" ]; then
    echo "$DCM_PG_BINDIR"
    return
  fi
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  if [ -n "$d" ] && [ -x "$d/initdb" ]; then
    echo "$d"
  elif command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
    dirname "$(command -v initdb)"
  fi
}

install_postgres() {
  [ -n "$(pg_bindir)" ] && return
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null ||
    die "PostgreSQL (initdb, pg_ctl) is not installed: install it (Debian/Ubuntu: sudo apt-get install postgresql), or set DCM_PG_BINDIR to its bin folder"
  log 'installing PostgreSQL from Debian (apt-get install postgresql)'
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2 </dev/null ||
    { apt-get update -q >&2 </dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2 </dev/null; } ||
    die 'apt-get install postgresql failed (output above)'
  [ -n "$(pg_bindir)" ] || die 'PostgreSQL was installed but no initdb was found under /usr/lib/postgresql/*/bin'
}

# ---------------------------------------------------------------------------------------------
# Ports, settings and secrets

# Chosen once per state folder: PostgreSQL and Temporal remember addresses across restarts.
load_ports() {
  local p name standard offset
  mkdir -p "$STATE"
  STATE="$(cd "$STATE" && pwd)"
  if [ ! -f "$STATE/ports.env" ]; then
    if [ -n "${DCM_PORT_BASE:-}" ]; then
      [ "$DCM_PORT_BASE" -ge 1024 ] && [ "$((DCM_PORT_BASE + ${#PORTS[@]}))" -le 32768 ] ||
        die "DCM_PORT_BASE=$DCM_PORT_BASE: every port must be between 1024 and 32767 (Temporal stores membership ports as a SQL smallint)"
    fi
    for p in "${PORTS[@]}"; do
      read -r name standard offset <<<"$p"
      if [ -n "${DCM_PORT_BASE:-}" ]; then echo "$name=$((DCM_PORT_BASE + offset))"; else echo "$name=$standard"; fi
    done >"$STATE/ports.env.tmp"
    mv "$STATE/ports.env.tmp" "$STATE/ports.env"
  fi
  # shellcheck disable=SC1091
  . "$STATE/ports.env"
  if [ -n "${DCM_PORT_BASE:-}" ] && [ "$DB_PORT" != "$DCM_PORT_BASE" ]; then
    log "DCM_PORT_BASE=$DCM_PORT_BASE is ignored: $STATE keeps the ports of its first up (ports.env)"
  fi
  TEMPORAL_ADDRESS="$BIND:$FRONTEND_GRPC_PORT"
  S3_ENDPOINT="http://$BIND:$S3_PORT"
}

# The config's value at a JSON path, e.g. cfg temporal.namespace.
cfg() { node -e 'let v = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); for (const k of process.argv[2].split(".")) v = v?.[k]; console.log(v ?? "")' "$STATE/config.json" "$1"; }

write_product_config() {
  [ -f "$SOURCE_CONFIG" ] || die "no product settings at $SOURCE_CONFIG"
  # compose service address → this machine's (the services of docker-compose.yml).
  node --no-node-snapshot "$REPO/deploy/native/config.ts" "$SOURCE_CONFIG" "$REPO" "$STATE/data" \
    "temporal:7233=$TEMPORAL_ADDRESS" \
    "s3:7070=$BIND:$S3_PORT" \
    "demo-apis:4001=$BIND:$CRM_PORT" \
    "demo-apis:4002=$BIND:$SHEETS_PORT" >"$STATE/config.json.tmp"
  mv "$STATE/config.json.tmp" "$STATE/config.json"
}

check_env_files() {
  local f
  for f in "$ENV_FILE" "$INFRA_ENV_FILE"; do
    [ -f "$f" ] || die "$f is missing: copy $(basename "$f").example beside it (cp $REPO/deploy/$(basename "$f").example $f) and fill in the secrets, as for compose"
  done
}

# export_env FILE...: the variables of these env files (compose's env_file: NAME=value lines,
# taken literally, comments skipped) into this shell.
export_env() {
  local f line
  for f in "$@"; do
    [ -r "$f" ] || die "cannot read $f"
    while IFS= read -r line || [ -n "$line" ]; do
      case "$line" in [A-Za-z_]*=*) export "${line?}" ;; esac
    done <"$f"
  done
}

# run_with FILE... -- COMMAND...: COMMAND with those env files' variables, so infrastructure and
# product processes each see only their own secrets.
run_with() {
  local files=()
  while [ "$1" != -- ]; do
    files+=("$1")
    shift
  done
  shift
  (
    export_env "${files[@]}"
    "$@"
  )
}

# ---------------------------------------------------------------------------------------------
# Processes: <state>/run/NAME.pid, output in <state>/logs/NAME.log

# Pid files hold "PID START-TIME", so a pid the kernel has since given to another process is not ours.
# (Empty for a process that is gone or a zombie: exited, not yet reaped.)
proc_start() {
  local stat
  stat="$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null)" || return 0
  case "$stat" in Z*) ;; *) echo "$stat" | cut -d' ' -f20 ;; esac
}
pid_of() {
  local pid since
  read -r pid since <"$STATE/run/$1.pid" 2>/dev/null || return 0
  [ -n "$pid" ] && [ "$(proc_start "$pid")" = "$since" ] && echo "$pid"
  return 0
}
running() { [ -n "$(pid_of "$1")" ]; }

# start NAME FILE... -- COMMAND...: COMMAND with those env files, in its own session so it outlives
# the shell (and test runner) that started it; its pid in <state>/run/NAME.pid.
start() {
  local name="$1"
  shift
  mkdir -p "$STATE/run" "$STATE/logs"
  setsid bash "${BASH_SOURCE[0]}" __exec "$@" >>"$STATE/logs/$name.log" 2>&1 </dev/null &
  echo "$! $(proc_start $!)" >"$STATE/run/$name.pid"
}

# wait_for NAME SECONDS CHECK...: until CHECK succeeds; fails (with the log's tail) if NAME exits or time runs out.
wait_for() {
  local name="$1" seconds="$2" deadline
  shift 2
  deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ! running "$name"; then
      tail -n 30 "$STATE/logs/$name.log" >&2 || true
      die "$name exited while starting (log: $STATE/logs/$name.log)"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 30 "$STATE/logs/$name.log" >&2 || true
      die "$name is not healthy after $seconds s (log: $STATE/logs/$name.log)"
    fi
    sleep 0.2
  done
}

# stop NAME GRACE_SECONDS: SIGTERM, then SIGKILL after the grace period.
stop() {
  local name="$1" grace="$2" pid since deadline
  pid="$(pid_of "$name")"
  since="$(proc_start "$pid")"
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + grace))
    while [ "$(proc_start "$pid")" = "$since" ]; do
      if [ "$SECONDS" -ge "$deadline" ]; then
        log "$name did not stop within $grace s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
      fi
      sleep 0.2
    done
    log "stopped $name"
  fi
  rm -f "$STATE/run/$name.pid"
}

http_ok() { # URL [max status]: the URL answers with a status below max (default 400)
  node -e 'fetch(process.argv[1]).then((r) => process.exit(r.status < Number(process.argv[2]) ? 0 : 1), () => process.exit(1))' "$1" "${2:-400}"
}

# ---------------------------------------------------------------------------------------------
# Services, in the order compose starts them

as_postgres() { # PostgreSQL refuses to run as root; from /, as the caller's folder may be closed to it
  if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

up_postgres() {
  local bin data="$STATE/postgres" socket="$STATE/postgres-socket"
  bin="$(pg_bindir)"
  mkdir -p "$socket" "$STATE/logs"
  touch "$STATE/logs/postgres.log"
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- test -x "$STATE" ||
      die "PostgreSQL runs as the postgres user, who cannot reach $STATE: choose a DCM_NATIVE_DIR it can reach (e.g. under /var/lib or /tmp)"
    chown postgres "$socket" "$STATE/logs/postgres.log"
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    log "initializing PostgreSQL in $data"
    mkdir -p "$data"
    [ "$(id -u)" = 0 ] && chown postgres "$data"
    # Local socket: trust, but the socket folder is private to the server's user. TCP: passwords.
    as_postgres "$bin/initdb" -D "$data" -U postgres --auth-local=trust --auth-host=scram-sha-256 -E UTF8 >>"$STATE/logs/postgres.log"
  fi
  chmod 700 "$socket"
  if ! as_postgres "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    as_postgres "$bin/pg_ctl" -D "$data" -l "$STATE/logs/postgres.log" -w -t 60 start \
      -o "-c listen_addresses=$BIND -c port=$DB_PORT -c unix_socket_directories=$socket" >/dev/null ||
      die "PostgreSQL did not start (log: $STATE/logs/postgres.log)"
    log "started postgres on $BIND:$DB_PORT"
  fi
  # The user compose's postgres image creates (POSTGRES_USER=temporal) with POSTGRES_PASSWORD.
  run_with "$INFRA_ENV_FILE" -- as_postgres "$bin/psql" -q -v ON_ERROR_STOP=1 -h "$socket" -p "$DB_PORT" -U postgres -d postgres >/dev/null <<'SQL'
\getenv password POSTGRES_PASSWORD
SELECT 'CREATE ROLE temporal' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'temporal')\gexec
ALTER ROLE temporal WITH LOGIN CREATEDB PASSWORD :'password';
SQL
}

down_postgres() {
  local bin
  bin="$(pg_bindir)"
  [ -f "$STATE/postgres/PG_VERSION" ] || return 0
  if as_postgres "$bin/pg_ctl" -D "$STATE/postgres" status >/dev/null 2>&1; then
    as_postgres "$bin/pg_ctl" -D "$STATE/postgres" -m fast -w stop >/dev/null
    log 'stopped postgres'
  fi
}

postgres_running() {
  [ -f "$STATE/postgres/PG_VERSION" ] && as_postgres "$(pg_bindir)/pg_ctl" -D "$STATE/postgres" status >/dev/null 2>&1
}

# compose's temporal-schema job
schema() {
  PATH="$(dirname "$(tool_bin temporal-sql-tool)"):$PATH" POSTGRES_SEEDS="$BIND" DB_PORT="$DB_PORT" \
    run_with "$INFRA_ENV_FILE" -- sh "$REPO/deploy/temporal-schema.sh" >>"$STATE/logs/temporal-schema.log" 2>&1 ||
    { tail -n 20 "$STATE/logs/temporal-schema.log" >&2; die "creating or upgrading the Temporal schema failed (log: $STATE/logs/temporal-schema.log)"; }
}

# The server's settings: compose's `temporal` service environment, with this machine's addresses and
# ports, for the server's embedded config template (secrets come from infra.env at start).
write_temporal_env() {
  {
    echo 'DB=postgres12'
    echo 'POSTGRES_USER=temporal'
    echo "POSTGRES_SEEDS=$BIND"
    echo "BIND_ON_IP=$BIND"
    echo "TEMPORAL_BROADCAST_ADDRESS=$BIND"
    echo "DYNAMIC_CONFIG_FILE_PATH=$REPO/deploy/temporal-dynamicconfig.yaml"
    grep -E '^(DB|FRONTEND|HISTORY|MATCHING|WORKER)_' "$STATE/ports.env"
  } >"$STATE/temporal.env"
}

temporal_healthy() { "$TEMPORAL_CLI" operator cluster health --address "$TEMPORAL_ADDRESS"; }

up_temporal() {
  running temporal && return
  write_temporal_env
  start temporal "$STATE/temporal.env" "$INFRA_ENV_FILE" -- "$(tool_bin temporal-server)" --allow-no-auth start
  wait_for temporal 120 temporal_healthy
  log "started temporal on $TEMPORAL_ADDRESS"
}

# compose's temporal-namespace job
namespace() {
  DURABLE_CODEMODE_CONFIG="$STATE/config.json" TEMPORAL_ADDRESS="$TEMPORAL_ADDRESS" \
    node --no-node-snapshot "$REPO/deploy/temporal-namespace.ts" --retention-days 7 >>"$STATE/logs/temporal-namespace.log" 2>&1 ||
    { tail -n 20 "$STATE/logs/temporal-namespace.log" >&2; die "registering the namespace failed (log: $STATE/logs/temporal-namespace.log)"; }
}

up_s3() {
  running s3 && return
  mkdir -p "$STATE/s3/objects" "$STATE/s3/iam"
  # compose's s3 service: root credentials from infra.env (ROOT_ACCESS_KEY / ROOT_SECRET_KEY).
  start s3 "$INFRA_ENV_FILE" -- "$(tool_bin versitygw)" --port "$BIND:$S3_PORT" --health /health --iam-dir "$STATE/s3/iam" \
    posix "$STATE/s3/objects"
  wait_for s3 30 http_ok "$S3_ENDPOINT/health"
  log "started s3 on $S3_ENDPOINT"
}

# compose's s3-init job
s3_init() {
  PATH="$(dirname "$(tool_bin versitygw)"):$PATH" S3_ENDPOINT="$S3_ENDPOINT" BUCKET="$(cfg blobs.store.bucket)" \
    run_with "$INFRA_ENV_FILE" "$ENV_FILE" -- sh "$REPO/deploy/s3-init.sh" >>"$STATE/logs/s3-init.log" 2>&1 ||
    { tail -n 20 "$STATE/logs/s3-init.log" >&2; die "creating the bucket and the product's S3 user failed (log: $STATE/logs/s3-init.log)"; }
}

up_ui() {
  running ui && return
  mkdir -p "$STATE/temporal-ui"
  cat >"$STATE/temporal-ui/native.yaml" <<YAML
# Written by deploy/native/cluster.sh: compose's temporal-ui service, on this machine only (no login).
temporalGrpcAddress: $TEMPORAL_ADDRESS
host: $BIND
port: $UI_PORT
enableUi: true
defaultNamespace: $(cfg temporal.namespace)
cors:
  allowOrigins:
    - http://$BIND:$UI_PORT
    - http://localhost:$UI_PORT
YAML
  start ui -- "$(tool_bin temporal-ui-server)" --root "$STATE" --config temporal-ui --env native start
  wait_for ui 30 http_ok "http://$BIND:$UI_PORT/"
  log "started ui on http://$BIND:$UI_PORT"
}

up_demo_apis() {
  running demo-apis && return
  start demo-apis -- node --no-node-snapshot "$REPO/deploy/demo-apis.ts" --host "$BIND" --crm-port "$CRM_PORT" --sheets-port "$SHEETS_PORT"
  wait_for demo-apis 30 http_ok "http://$BIND:$CRM_PORT/leads"
}

# The product's processes: compose's x-product (DURABLE_CODEMODE_CONFIG and deploy/.env).
product() {
  local name="$1"
  shift
  DURABLE_CODEMODE_CONFIG="$STATE/config.json" start "$name" "$ENV_FILE" -- node --no-node-snapshot "$REPO/cli/main.ts" "$@"
}

# A worker is ready when it polls; only output after `since` bytes of its log counts.
worker_polling() { tail -c "+$(($2 + 1))" "$STATE/logs/$1.log" | grep -q 'worker polling'; }

up_workers() {
  local i started=() since=()
  for i in $(seq 1 "$WORKERS"); do
    running "worker-$i" && continue
    since[i]="$(stat -c %s "$STATE/logs/worker-$i.log" 2>/dev/null || echo 0)"
    product "worker-$i" worker
    started+=("$i")
  done
  for i in "${started[@]}"; do wait_for "worker-$i" 120 worker_polling "worker-$i" "${since[i]}"; done
}

up_mcp() {
  running mcp && return
  product mcp serve --http --host "${DCM_MCP_HOST:-$(cfg http.host)}" --port "$MCP_PORT"
  # Up when /mcp answers at all (401 without a token), as compose's health check.
  wait_for mcp 60 http_ok "http://127.0.0.1:$MCP_PORT/mcp" 500
}

SERVICES_DOWN_ORDER=(mcp workers demo-apis ui s3 temporal postgres)

cmd_up() {
  local start_time=$SECONDS
  check_env_files
  install_tools
  TEMPORAL_CLI="$(command -v temporal || true)"
  [ -n "$TEMPORAL_CLI" ] || die 'the Temporal CLI is not on PATH: run `. scripts/toolchain.sh` first'
  load_ports
  write_product_config
  up_postgres
  schema
  up_temporal
  namespace
  up_s3
  s3_init
  up_ui
  up_demo_apis
  up_workers
  up_mcp
  log "up in $((SECONDS - start_time)) s"
  cmd_status
}

cmd_down() {
  local name i
  [ -f "$STATE/ports.env" ] || return 0
  local services=("$@")
  [ ${#services[@]} -gt 0 ] || services=("${SERVICES_DOWN_ORDER[@]}")
  for name in "${services[@]}"; do
    case "$name" in
      postgres) down_postgres ;;
      # SIGTERM drains a worker (compose's stop_grace_period: 2m).
      workers) for i in "$STATE"/run/worker-*.pid; do [ -e "$i" ] && stop "$(basename "$i" .pid)" 120; done ;;
      worker-*) stop "$name" 120 ;;
      temporal | s3 | ui | demo-apis | mcp) stop "$name" 30 ;;
      *) die "unknown service $name (postgres, temporal, s3, ui, demo-apis, workers, worker-N, mcp)" ;;
    esac
  done
}

cmd_status() {
  local name i down=0
  load_ports
  printf '%-10s %-8s %s\n' service state address
  if postgres_running; then
    printf '%-10s %-8s %s\n' postgres up "$BIND:$DB_PORT"
  else
    printf '%-10s %-8s %s\n' postgres down "$BIND:$DB_PORT"
    down=1
  fi
  for name in temporal s3 ui demo-apis mcp $(for i in $(seq 1 "$WORKERS"); do echo "worker-$i"; done); do
    local address=''
    case "$name" in
      temporal) address="$TEMPORAL_ADDRESS (UI http://$BIND:$UI_PORT)" ;;
      s3) address="$S3_ENDPOINT" ;;
      ui) address="http://$BIND:$UI_PORT" ;;
      demo-apis) address="crm http://$BIND:$CRM_PORT, sheets http://$BIND:$SHEETS_PORT" ;;
      mcp) address="http://127.0.0.1:$MCP_PORT/mcp" ;;
    esac
    if running "$name"; then
      printf '%-10s %-8s %s\n' "$name" "up" "$address"
    else
      printf '%-10s %-8s %s\n' "$name" "down" "$address"
      down=1
    fi
  done
  return $down
}

cmd_env() {
  load_ports
  cat "$STATE/ports.env"
  echo "TEMPORAL_ADDRESS=$TEMPORAL_ADDRESS"
  echo "S3_ENDPOINT=$S3_ENDPOINT"
  echo "DURABLE_CODEMODE_CONFIG=$STATE/config.json"
}

case "${1:-}" in
  __exec) # internal, for start: FILE... -- COMMAND..., in place (the pid stays start's)
    shift
    while [ "$1" != -- ]; do
      export_env "$1"
      shift
    done
    shift
    exec "$@"
    ;;
  up) cmd_up ;;
  down)
    shift
    cmd_down "$@"
    ;;
  status) cmd_status ;;
  install) install_tools ;;
  env) cmd_env ;;
  config)
    load_ports
    write_product_config
    write_temporal_env
    ;;
  *)
    sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
