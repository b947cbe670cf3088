#!/usr/bin/env bash
# A local 3-node Tidelog cluster on 127.0.0.1.
#
#   ./cluster.sh start            start the nodes that are not running, wait for them, show status
#   ./cluster.sh stop             SIGTERM every node; SIGKILL what is left after 10 s
#   ./cluster.sh status           each node's role, term, controller and liveness, plus pids
#   ./cluster.sh kill N           SIGKILL node N (a crash)
#   ./cluster.sh restart N        stop node N (SIGTERM) and start it again
#   ./cluster.sh logs N [-n K]    follow node N's log (last K lines first, default 100)
#
# Node N: Kafka 127.0.0.1:909(1+N), Raft 127.0.0.1:919(1+N), data in DIR/node-N, log in
# DIR/node-N.log, pid in DIR/node-N.pid, where DIR is $TIDELOG_CLUSTER_DIR or ./data next
# to this script. Runs ./tidelog when it exists (deno task compile), else main.ts with the
# first of: deno on PATH, ./node_modules/.bin/deno, npx --yes deno@2.9.6.
# $TIDELOG_EXTRA_ARGS is added to every node's `serve` flags (split on whitespace).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DATA="${TIDELOG_CLUSTER_DIR:-$ROOT/data}"
case "$DATA" in
/*) ;;
*) DATA="$PWD/$DATA" ;;
esac
NODES=(1 2 3)
PEERS="1@127.0.0.1:9192,2@127.0.0.1:9193,3@127.0.0.1:9194"
ADDRS="127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094"
START_TIMEOUT_S=30
STOP_TIMEOUT_S=10

usage() {
  echo "usage: $0 start|stop|status|kill N|restart N|logs N [-n LINES]" >&2
  exit 2
}

die() {
  echo "cluster.sh: $*" >&2
  exit 1
}

kafka_port() { echo $((9091 + $1)); }
raft_port() { echo $((9191 + $1)); }
http_port() { echo $((9643 + $1)); }
pid_file() { echo "$DATA/node-$1.pid"; }
log_file() { echo "$DATA/node-$1.log"; }

# The command that runs tidelog, in the array RUN. For Deno, the real binary is resolved
# (npx would otherwise sit between us and the node, and a SIGKILL would miss the node).
RUN=()
resolve_runner() {
  [ ${#RUN[@]} -gt 0 ] && return
  if [ -x "$ROOT/tidelog" ] && [ -f "$ROOT/tidelog" ]; then
    RUN=("$ROOT/tidelog")
    return
  fi
  local deno
  if command -v deno >/dev/null 2>&1; then
    deno="$(command -v deno)"
  elif [ -x "$ROOT/node_modules/.bin/deno" ]; then
    deno="$ROOT/node_modules/.bin/deno"
  else
    command -v npx >/dev/null 2>&1 || die "no ./tidelog, no deno and no npx found"
    deno="$(npx --yes deno@2.9.6 eval 'console.log(Deno.execPath())')" ||
      die "could not get Deno with npx"
  fi
  RUN=("$deno" run --allow-all --config "$ROOT/deno.json" "$ROOT/main.ts")
}

# The pid of node N if it is running (and is a tidelog node), else nothing; exit status 1.
running_pid() {
  local file pid
  file="$(pid_file "$1")"
  [ -f "$file" ] || return 1
  pid="$(cat "$file")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # A recycled pid belongs to something else: only signal our own node.
  ps -ww -p "$pid" -o args= 2>/dev/null | grep -q -- "--node-id $1 " || return 1
  echo "$pid"
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

launch() {
  local n=$1 extra=()
  if running_pid "$n" >/dev/null; then
    echo "node $n already running (pid $(running_pid "$n"))"
    return
  fi
  resolve_runner
  read -r -a extra <<<"${TIDELOG_EXTRA_ARGS:-}"
  mkdir -p "$DATA"
  nohup "${RUN[@]}" serve \
    --node-id "$n" \
    --kafka-addr "127.0.0.1:$(kafka_port "$n")" \
    --raft-addr "127.0.0.1:$(raft_port "$n")" \
    --http-addr "127.0.0.1:$(http_port "$n")" \
    --peers "$PEERS" \
    --data-dir "$DATA/node-$n" \
    ${extra[@]+"${extra[@]}"} \
    >>"$(log_file "$n")" 2>&1 </dev/null &
  echo $! >"$(pid_file "$n")"
  echo "node $n starting (pid $!, Kafka 127.0.0.1:$(kafka_port "$n"), HTTP 127.0.0.1:$(http_port "$n"), log $(log_file "$n"))"
}

# Waits until node N accepts Kafka connections; 1 if it died or took too long.
wait_up() {
  local n=$1 port deadline
  port="$(kafka_port "$n")"
  deadline=$((SECONDS + START_TIMEOUT_S))
  until port_open "$port"; do
    if ! running_pid "$n" >/dev/null; then
      echo "node $n exited during start-up; last lines of $(log_file "$n"):" >&2
      tail -n 20 "$(log_file "$n")" >&2 || true
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "node $n: nothing listens on 127.0.0.1:$port after ${START_TIMEOUT_S}s" >&2
      return 1
    fi
    sleep 0.2
  done
}

# Stops the given nodes: SIGTERM to all at once, SIGKILL to those left after the timeout.
stop_nodes() {
  local n pid deadline alive
  local -A pids=()
  for n in "$@"; do
    if pid="$(running_pid "$n")"; then
      pids[$n]=$pid
      kill -TERM "$pid" 2>/dev/null || true
    else
      rm -f "$(pid_file "$n")"
      echo "node $n not running"
    fi
  done
  deadline=$((SECONDS + STOP_TIMEOUT_S))
  for n in "${!pids[@]}"; do
    pid=${pids[$n]}
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
  done
  for n in $(printf '%s\n' "${!pids[@]}" | sort -n); do
    pid=${pids[$n]}
    alive=0
    kill -0 "$pid" 2>/dev/null && alive=1
    if [ "$alive" -eq 1 ]; then
      echo "node $n did not stop in ${STOP_TIMEOUT_S}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    rm -f "$(pid_file "$n")"
    echo "node $n stopped (pid $pid)"
  done
}

show_status() {
  local n pid code=0
  resolve_runner
  "${RUN[@]}" status --addrs "$ADDRS" || code=$?
  for n in "${NODES[@]}"; do
    if pid="$(running_pid "$n")"; then
      echo "node $n  pid $pid  running"
    else
      echo "node $n  no process"
    fi
  done
  return "$code"
}

node_arg() {
  [[ "${1:-}" =~ ^[1-3]$ ]] || usage
  echo "$1"
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
start)
  [ $# -eq 0 ] || usage
  for n in "${NODES[@]}"; do launch "$n"; done
  failed=0
  for n in "${NODES[@]}"; do wait_up "$n" || failed=1; done
  show_status || true
  exit "$failed"
  ;;
stop)
  [ $# -eq 0 ] || usage
  stop_nodes "${NODES[@]}"
  ;;
status)
  [ $# -eq 0 ] || usage
  show_status
  ;;
kill)
  [ $# -eq 1 ] || usage
  n="$(node_arg "$1")"
  pid="$(running_pid "$n")" || die "node $n is not running"
  kill -KILL "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  rm -f "$(pid_file "$n")"
  echo "node $n killed (SIGKILL, pid $pid)"
  ;;
restart)
  [ $# -eq 1 ] || usage
  n="$(node_arg "$1")"
  stop_nodes "$n"
  launch "$n"
  wait_up "$n"
  ;;
logs)
  lines=100
  n=""
  while [ $# -gt 0 ]; do
    case "$1" in
    -n)
      if [ $# -lt 2 ] || ! [[ "$2" =~ ^[0-9]+$ ]]; then usage; fi
      lines="$2"
      shift 2
      ;;
    *)
      [ -z "$n" ] || usage
      n="$(node_arg "$1")"
      shift
      ;;
    esac
  done
  [ -n "$n" ] || usage
  [ -f "$(log_file "$n")" ] || die "no log yet: $(log_file "$n")"
  exec tail -n "$lines" -f "$(log_file "$n")"
  ;;
*)
  usage
  ;;
esac
