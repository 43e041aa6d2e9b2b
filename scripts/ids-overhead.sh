#!/usr/bin/env bash
# What request ids cost the load generator: server-tokio pinned to core 1 (--sink null),
# the load generator on core 0, runs alternately with ids (the default) and with --no-ids,
# order alternating, N pairs. Prints each run's req/s and the load generator's own CPU per
# request (user + system µs, from its rusage), each pair's with/without ratios and their
# medians. Needs release builds (cargo build --release).
#
#   scripts/ids-overhead.sh [pairs=6] [seconds=5] [loadgen flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
pairs=${1:-6}
secs=${2:-5}
shift $(( $# >= 2 ? 2 : $# ))
out=$(mktemp)
taskset -c 1 ./target/release/server-tokio --listen 127.0.0.1:0 --sink null --threads 1 >"$out" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -f "$out"' EXIT
for _ in $(seq 1 50); do grep -q "listening on" "$out" && break; sleep 0.1; done
addr=$(grep -o "127.0.0.1:[0-9]*" "$out" | head -1)
[ -n "$addr" ] || { echo "ids-overhead: server-tokio did not start:" >&2; cat "$out" >&2; exit 1; }
# One run: "<req/s> <loadgen CPU µs per request>".
run() {
  python3 - "$addr" "$secs" "$@" <<'PY'
import json, resource, subprocess, sys
addr, secs, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
cmd = ["taskset", "-c", "0", "./target/release/loadgen", f"http://{addr}/ingest",
       "-c", "32", "-t", "1", "-d", f"{secs}s", "--json", "--no-progress", *extra]
before = resource.getrusage(resource.RUSAGE_CHILDREN)
r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
after = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
print(f'{r["rate"]:.0f} {cpu / max(r["completed"], 1) * 1e6:.3f}')
PY
}
rates=()
cpus=()
for i in $(seq 1 "$pairs"); do
  if [ $((i % 2)) -eq 1 ]; then read -r off_r off_c < <(run --no-ids "$@"); read -r on_r on_c < <(run "$@")
  else read -r on_r on_c < <(run "$@"); read -r off_r off_c < <(run --no-ids "$@"); fi
  rr=$(python3 -c "print(round($on_r / $off_r, 3))")
  cr=$(python3 -c "print(round($on_c / $off_c, 3))")
  rates+=("$rr")
  cpus+=("$cr")
  echo "pair $i: ids $on_r req/s at $on_c µs/req, no ids $off_r req/s at $off_c µs/req; rate ratio $rr, CPU ratio $cr"
done
python3 -c "import statistics, sys; n = len(sys.argv) // 2; r, c = sorted(map(float, sys.argv[1:n + 1])), sorted(map(float, sys.argv[n + 1:])); print(f'median with/without ids over {n} pairs: rate {statistics.median(r):.3f} {r}, load generator CPU per request {statistics.median(c):.3f} {c}')" "${rates[@]}" "${cpus[@]}"
