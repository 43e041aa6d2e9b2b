#!/usr/bin/env bash
# Measures the load generator against wrk: the same server, connections and threads,
# closed-loop keep-alive 100 B POSTs, alternating runs, medians. Also the servers'
# Kafka-vs-null-sink ratio when called with `sink`.
#
#   scripts/loadgen-vs-wrk.sh [rounds=5] [seconds=10] [connections=64]
#   scripts/loadgen-vs-wrk.sh sink [rounds=3] [seconds=10]    (CLIENT=loadgen to drive it with loadgen)
#
# Needs wrk (Debian package `wrk`) and release builds (built here if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null 2>&1 || { echo "install wrk first (apt-get install wrk)" >&2; exit 2; }
cargo build --release --locked -q -p server-tokio -p server-uring -p runtime-bench-loadgen

lua=$(mktemp -t post.XXXXXX.lua)
body=$(head -c 100 /dev/zero | tr '\0' 'x')
cat >"$lua" <<LUA
wrk.method = "POST"
wrk.body = "$body"
wrk.headers["Content-Type"] = "application/octet-stream"
LUA

start_server() { # bin args... -> sets addr, pid
  local out
  out=$(mktemp -t server.XXXXXX.out)
  "$@" --listen 127.0.0.1:0 >"$out" 2>/dev/null &
  pid=$!
  for _ in $(seq 1 100); do
    addr=$(grep -o 'listening on [0-9.:]*' "$out" | awk '{print $3}' || true)
    [ -n "$addr" ] && return 0
    sleep 0.1
  done
  echo "server did not start" >&2
  exit 1
}
stop_server() { kill "$pid"; wait "$pid" 2>/dev/null || true; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
wrk_rate() { wrk -t1 -c"$1" -d"$2"s -s "$lua" "http://$addr/ingest" | awk '/Requests\/sec/ {print $2}'; }
lg_rate() {
  ./target/release/loadgen "http://$addr/ingest" -t 1 -c "$1" -d "$2"s --json --no-progress |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["rate"]) if not r["errors"] and r["ok"]==r["completed"] else sys.exit("errors: %s" % r["errors"])'
}

if [ "${1:-}" = sink ]; then
  rounds=${2:-3}; secs=${3:-10}
  rate=wrk_rate
  [ "${CLIENT:-wrk}" = loadgen ] && rate=lg_rate
  for bin in server-tokio server-uring; do
    kafka=(); null=()
    for _ in $(seq 1 "$rounds"); do
      start_server "./target/release/$bin"; kafka+=("$($rate 64 "$secs")"); stop_server
      start_server "./target/release/$bin" --sink null; null+=("$($rate 64 "$secs")"); stop_server
    done
    k=$(printf '%s\n' "${kafka[@]}" | median); n=$(printf '%s\n' "${null[@]}" | median)
    echo "$bin (client ${CLIENT:-wrk}): kafka (ack enqueued) ${kafka[*]} -> median $k; null sink ${null[*]} -> median $n; ratio $(python3 -c "print(round($k/$n,3))")"
  done
  exit 0
fi

rounds=${1:-5}; secs=${2:-10}; conns=${3:-64}
start_server ./target/release/server-tokio --sink null
trap stop_server EXIT
w=(); l=()
for _ in $(seq 1 "$rounds"); do
  w+=("$(wrk_rate "$conns" "$secs")")
  l+=("$(lg_rate "$conns" "$secs")")
done
wm=$(printf '%s\n' "${w[@]}" | median); lm=$(printf '%s\n' "${l[@]}" | median)
echo "server-tokio --sink null, $conns connections, 1 client thread, ${secs}s x $rounds alternating rounds"
echo "wrk:     ${w[*]} -> median $wm req/s"
echo "loadgen: ${l[*]} -> median $lm req/s"
echo "loadgen / wrk: $(python3 -c "print(round($lm/$wm,3))")"
