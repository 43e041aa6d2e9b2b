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

# 4. A machine matrix: one VM per type, in parallel; one type cannot be created; the
#    others run, come back to <out>/<type>/, are deleted, and are compared on one page.
: >"$GCLOUD_LOG"
export CARGO_LOG="$tmp/cargo"
if GCLOUD_FAIL_TYPE=t-bad "$root/results/gcp/run.sh" --name mx --machine-types t-1,t-bad,t-2 \
  --out "$tmp/mx" >"$tmp/mx.log" 2>&1; then
  fail "the matrix succeeded although one type failed"
fi
for t in t-1 t-2; do
  grep -qx "profile=default" "$tmp/mx/$t/summary.md" || fail "$t: results not copied back"
  calls | grep -q "instances delete mx-$t" || fail "$t: VM not deleted"
done
[ "$(calls | grep -c "instances create")" -eq 3 ] || fail "not one VM per type"
grep -q "quota exceeded for t-bad" "$tmp/mx/t-bad.log" || fail "the failing type's log does not say why"
grep -q "ran: 2 of 3 types; FAILED: t-bad" "$tmp/mx.log" || fail "the failure is not reported: $(cat "$tmp/mx.log")"
left=$(find "$GCLOUD_VMS" -mindepth 1 -maxdepth 1 -name 'mx-*')
[ -z "$left" ] || fail "VMs left behind: $left"
grep -qF -- "--compare $tmp/mx/t-1 $tmp/mx/t-2 --out $tmp/mx/compare.html" "$CARGO_LOG" ||
  fail "no comparison of the types that ran: $(cat "$CARGO_LOG" 2>/dev/null)"

echo "test-remote: 4 passed, 0 failed"
