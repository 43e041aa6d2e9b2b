#!/usr/bin/env bash
# What counting syscalls costs a server: one server pinned to core 1 (--sink null), the
# load generator on core 0, 3 s runs alternately without and with tracepoint counters
# attached (`perf stat` on the same raw_syscalls/syscalls tracepoints the bench counts,
# through the same perf_event_open counting mode), order alternating, N pairs; prints each
# pair's with/without req/s ratio and their median. Needs `perf` (Debian: linux-perf) and
# release builds (cargo build --release).
#
#   scripts/syscall-overhead.sh server-tokio [pairs=10] [extra server flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:?usage: scripts/syscall-overhead.sh server-tokio|server-uring [pairs] [flags...]}
pairs=${2:-10}
shift $(( $# >= 2 ? 2 : 1 ))
command -v perf >/dev/null || { echo "syscall-overhead: needs perf (apt-get install linux-perf)" >&2; exit 2; }
out=$(mktemp)
taskset -c 1 "./target/release/$bin" --listen 127.0.0.1:0 --sink null --threads 1 "$@" >"$out" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -f "$out"' EXIT
for _ in $(seq 1 50); do grep -q "listening on" "$out" && break; sleep 0.1; done
addr=$(grep -o "127.0.0.1:[0-9]*" "$out" | head -1)
[ -n "$addr" ] || { echo "syscall-overhead: $bin did not start:" >&2; cat "$out" >&2; exit 1; }
events=raw_syscalls:sys_enter,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_io_uring_enter
run() {
  taskset -c 0 ./target/release/loadgen "http://$addr/ingest" -c 32 -t 1 -d 3s 2>/dev/null |
    grep -o "= [0-9]* req/s" | tr -dc 0-9
}
counted() {
  perf stat -e "$events" -p "$server" -o /dev/null -- sleep 3.3 &
  local p=$!
  sleep 0.1
  run
  wait "$p"
}
ratios=()
for i in $(seq 1 "$pairs"); do
  if [ $((i % 2)) -eq 1 ]; then off=$(run); on=$(counted); else on=$(counted); off=$(run); fi
  r=$(python3 -c "print(round($on / $off, 3))")
  ratios+=("$r")
  echo "pair $i: without $off req/s, with $on req/s, ratio $r"
done
python3 -c "import statistics, sys; r = sorted(map(float, sys.argv[1:])); print(f'median with/without {statistics.median(r):.3f} over {len(r)} pairs; all: {r}')" "${ratios[@]}"
