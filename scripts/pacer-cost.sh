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
out=$(mktemp)
taskset -c 1 ./target/release/server-tokio --listen 127.0.0.1:0 --sink null --threads 1 >"$out" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -f "$out"' EXIT
for _ in $(seq 1 50); do grep -q "listening on" "$out" && break; sleep 0.1; done
addr=$(grep -o "127.0.0.1:[0-9]*" "$out" | head -1)
[ -n "$addr" ] || { echo "pacer-cost: server-tokio did not start:" >&2; cat "$out" >&2; exit 1; }
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
print(f'{r["rate"]:.0f} {cpu / max(sent, 1) * 1e6:.3f} {own}')
PY
}
rates=()
cpus=()
for i in $(seq 1 "$pairs"); do
  if [ $((i % 2)) -eq 1 ]; then read -r a_r a_c a_l < <(run "$old" "${pace[@]}" "$@"); read -r b_r b_c b_l < <(run "$new" "${pace[@]}" "$@")
  else read -r b_r b_c b_l < <(run "$new" "${pace[@]}" "$@"); read -r a_r a_c a_l < <(run "$old" "${pace[@]}" "$@"); fi
  rr=$(python3 -c "print(round($b_r / $a_r, 3))")
  cr=$(python3 -c "print(round($b_c / $a_c, 3))")
  rates+=("$rr")
  cpus+=("$cr")
  echo "pair $i: old $a_r req/s at $a_c µs/req (own delay p99 $a_l µs), new $b_r req/s at $b_c µs/req (p99 $b_l µs); rate ratio $rr, CPU ratio $cr"
done
python3 -c "import statistics, sys; n = len(sys.argv) // 2; r, c = sorted(map(float, sys.argv[1:n + 1])), sorted(map(float, sys.argv[n + 1:])); print(f'median new/old over {n} pairs: rate {statistics.median(r):.3f} {r}, load generator CPU per request {statistics.median(c):.3f} {c}')" "${rates[@]}" "${cpus[@]}"
