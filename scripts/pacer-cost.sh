#!/usr/bin/env bash
# What open-loop pacing costs the load generator: server-tokio pinned to core 1 (--sink
# null), the load generator on core 0, runs alternately with two load generator binaries
# (e.g. before and after a change to the pacer), order alternating, N pairs, each paced at
# RATE requests/s over 32 keep-alive connections; with RATE=closed, closed loop. Prints each
# run's achieved req/s, its load generator's CPU per request (user + system µs, from its
# rusage) and the p99 of its own send delay, and the medians of each pair's ratios.
# Needs release builds (cargo build --release).
#
#   scripts/pacer-cost.sh OLD_LOADGEN [pairs=6] [rate=40000] [seconds=4] [loadgen flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
old=${1:?usage: scripts/pacer-cost.sh OLD_LOADGEN [pairs] [rate] [seconds] [flags...]}
pairs=${2:-6}
rate=${3:-40000}
secs=${4:-4}
shift $(( $# >= 4 ? 4 : $# ))
new=./target/release/loadgen
# shellcheck disable=SC1091 # sourced from this folder
. scripts/ab-lib.sh
start_null_server pacer-cost
pace=()
[ "$rate" = closed ] || pace=(--rate "$rate")
# One run: "<req/s> <loadgen CPU µs per request> <own send delay p99 µs>".
run() {
  python3 - "$addr" "$secs" "$@" <<'PY'
import json, resource, subprocess, sys
addr, secs, binary, extra = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
cmd = ["taskset", "-c", "0", binary, f"http://{addr}/ingest",
       "-c", "32", "-t", "1", "-d", f"{secs}s", "--warmup", "500ms", "--json", "--no-progress", *extra]
before = resource.getrusage(resource.RUSAGE_CHILDREN)
r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
after = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
sent = r["completed"] * (1 + 0.5 / float(secs))  # the warm-up's requests cost CPU too
own = ((r.get("schedule") or {}).get("client_lag_us") or {}).get("p99", 0)
print(f'{r["rate"]:.0f} {cpu / max(sent, 1) * 1e6:.3f} own delay p99 {own} µs')
PY
}
extra=("$@")
run_a() { run "$old" "${pace[@]}" "${extra[@]}"; }
run_b() { run "$new" "${pace[@]}" "${extra[@]}"; }
ab_pairs "$pairs" old new "load generator"
