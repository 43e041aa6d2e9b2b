#!/usr/bin/env bash
# Exercises results/gcp/run.sh's remote flow (create, wait for SSH, copy the source, run,
# copy the results back, delete: also on failure) against a stand-in gcloud that plays the
# VM on this machine (results/gcp/standin/). No cloud account, no network. Run by CI.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export PATH="$here/standin:$PATH" GCLOUD_VMS="$tmp/vms" GCLOUD_LOG="$tmp/calls"
mkdir -p "$GCLOUD_VMS"
fail() { echo "test-remote: FAIL: $*" >&2; echo "calls:" >&2; cat "$GCLOUD_LOG" >&2; exit 1; }
calls() { awk 'BEGIN { RS = "--\n" } { gsub("\n", " "); print }' "$GCLOUD_LOG"; }

# 1. A run that works: every step in order, the arguments intact, the results copied
#    back, the VM deleted.
kafka='broker-a:9092,broker b:9092'
"$root/results/gcp/run.sh" --project p-1 --zone z-1 --name rb-ok --profile quick \
  --kafka-brokers "$kafka" --out "$tmp/out" >"$tmp/ok.log" 2>&1 || { cat "$tmp/ok.log"; fail "the run failed"; }
got=$(calls | awk '{ print $2, $3 }' | uniq | tr '\n' ',')
[ "$got" = "instances create,ssh rb-ok,scp --recurse,instances delete," ] || fail "steps: $got"
calls | grep -q -- "--zone z-1 --project p-1" || fail "zone and project not passed"
[ -f "$tmp/out/summary.md" ] || fail "results not copied back"
grep -qx "profile=quick" "$tmp/out/summary.md" || fail "profile not passed: $(cat "$tmp/out/summary.md")"
grep -qxF "kafka=$kafka" "$tmp/out/summary.md" || fail "brokers not passed intact: $(cat "$tmp/out/summary.md")"
[ ! -e "$GCLOUD_VMS/rb-ok" ] || fail "the VM was not deleted"

# 2. The on-VM run fails: run.sh fails too, and the VM is still deleted.
: >"$GCLOUD_LOG"
if GCLOUD_FAIL=run "$root/results/gcp/run.sh" --name rb-fail --out "$tmp/out2" >"$tmp/fail.log" 2>&1; then
  fail "run.sh succeeded although the on-VM run failed"
fi
calls | grep -q "instances delete rb-fail" || fail "the VM was not deleted after a failure"
[ ! -e "$GCLOUD_VMS/rb-fail" ] || fail "the VM is left behind after a failure"

# 3. --keep-vm keeps it.
: >"$GCLOUD_LOG"
"$root/results/gcp/run.sh" --name rb-keep --keep-vm --out "$tmp/out3" >"$tmp/keep.log" 2>&1 || { cat "$tmp/keep.log"; fail "the --keep-vm run failed"; }
calls | grep -q "instances delete" && fail "--keep-vm deleted the VM"
[ -d "$GCLOUD_VMS/rb-keep" ] || fail "--keep-vm: the VM is gone"

echo "test-remote: 3 passed, 0 failed"
