# shellcheck shell=bash
# Sourced by the A/B cost scripts (ids-overhead.sh, pacer-cost.sh, server-ab-cost.sh):
# a null-sink server-tokio to load, and the interleaved pairs with their ratios.

# Starts server-tokio on core 1 (--sink null, one thread), sets `addr` to its address and
# stops it when the calling script exits. $1 names the script in its error message.
start_null_server() {
  out=$(mktemp)
  taskset -c 1 ./target/release/server-tokio --listen 127.0.0.1:0 --sink null --threads 1 >"$out" 2>&1 &
  server=$!
  trap 'kill "$server" 2>/dev/null || true; rm -f "$out"' EXIT
  for _ in $(seq 1 50); do grep -q "listening on" "$out" && break; sleep 0.1; done
  addr=$(grep -o "127.0.0.1:[0-9]*" "$out" | head -1)
  [ -n "$addr" ] || { echo "$1: server-tokio did not start:" >&2; cat "$out" >&2; exit 1; }
}

# N pairs of runs of the caller's `run_a` and `run_b` (each prints "<req/s> <CPU µs per
# request> [anything else]"), order alternating (A B, then B A, ...); prints each pair with
# its B/A ratios, then their medians. (Its locals are named apart from the callers'
# variables: bash functions see their callers' locals.)
#   ab_pairs PAIRS A_LABEL B_LABEL WHOSE_CPU
ab_pairs() {
  local n_pairs=$1 label_a=$2 label_b=$3 whose=$4 i a_r a_c a_x b_r b_c b_x rr cr
  local rates=() cpus=()
  for i in $(seq 1 "$n_pairs"); do
    if [ $((i % 2)) -eq 1 ]; then read -r a_r a_c a_x < <(run_a); read -r b_r b_c b_x < <(run_b)
    else read -r b_r b_c b_x < <(run_b); read -r a_r a_c a_x < <(run_a); fi
    rr=$(python3 -c "print(round($b_r / $a_r, 3))")
    cr=$(python3 -c "print(round($b_c / $a_c, 3))")
    rates+=("$rr")
    cpus+=("$cr")
    echo "pair $i: $label_a $a_r req/s at $a_c µs/req${a_x:+ ($a_x)}, $label_b $b_r req/s at $b_c µs/req${b_x:+ ($b_x)}; rate ratio $rr, CPU ratio $cr"
  done
  python3 -c "import statistics, sys; n = len(sys.argv) // 2 - 1; l, w = sys.argv[1:3]; r, c = sorted(map(float, sys.argv[3:n + 3])), sorted(map(float, sys.argv[n + 3:])); print(f'median {l} over {n} pairs: rate {statistics.median(r):.3f} {r}, {w} CPU per request {statistics.median(c):.3f} {c}')" "$label_b/$label_a" "$whose" "${rates[@]}" "${cpus[@]}"
}
