#!/usr/bin/env bash
# What a change to a server costs it (a build option such as frame pointers, a flag such
# as --task-metrics): two server commands (a binary and its flags), each started fresh on
# core 1 (--sink null, one thread) for a closed-loop run from the load generator on core
# 0, alternately, order alternating, N pairs. Prints each run's req/s and the server's CPU
# per request (utime + stime from /proc/PID/stat, 10 ms ticks), each pair's B/A ratios and
# their medians. Needs release builds.
#
#   scripts/server-ab-cost.sh 'A_BINARY [flags]' 'B_BINARY [flags]' [pairs=6] [seconds=3] [loadgen flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
a=${1:?usage: scripts/server-ab-cost.sh A_COMMAND B_COMMAND [pairs] [seconds] [flags...]}
b=${2:?usage: scripts/server-ab-cost.sh A_COMMAND B_COMMAND [pairs] [seconds] [flags...]}
pairs=${3:-6}
secs=${4:-3}
shift $(( $# >= 4 ? 4 : $# ))
# One run of server command $1: "<req/s> <server CPU µs per request>".
run() {
  python3 - "$1" "$secs" "${@:2}" <<'PY'
import json, os, re, shlex, subprocess, sys, time
command, secs, extra = shlex.split(sys.argv[1]), sys.argv[2], sys.argv[3:]
srv = subprocess.Popen(["taskset", "-c", "1", *command, "--listen", "127.0.0.1:0", "--sink", "null",
                        "--threads", "1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
try:
    addr = None
    deadline = time.time() + 10
    while addr is None and time.time() < deadline:
        line = srv.stdout.readline()
        m = re.search(r"127\.0\.0\.1:\d+", line)
        addr = m.group(0) if m and "listening" in line else None
    if addr is None:
        sys.exit(f"server-ab-cost: {command} did not start")
    def cpu():
        f = open(f"/proc/{srv.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    c0 = cpu()
    out = subprocess.run(["taskset", "-c", "0", "./target/release/loadgen", f"http://{addr}/ingest",
                          "-c", "32", "-t", "1", "-d", f"{secs}s", "--warmup", "500ms", "--json",
                          "--no-progress", *extra], check=True, capture_output=True, text=True).stdout
    c1 = cpu()
    r = json.loads(out)
    answered = r["completed"] * (1 + 0.5 / float(secs))  # the warm-up's requests cost CPU too
    print(f'{r["rate"]:.0f} {(c1 - c0) / answered * 1e6:.3f}')
finally:
    srv.terminate()
    srv.wait()
PY
}
# shellcheck disable=SC1091 # sourced from this folder
. scripts/ab-lib.sh
extra=("$@")
run_a() { run "$a" "${extra[@]}"; }
run_b() { run "$b" "${extra[@]}"; }
ab_pairs "$pairs" A B server
