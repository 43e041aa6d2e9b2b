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
calls | grep -q "instances delete rb-ok --zone z-1 --project p-1" || fail "deleted without its zone and project"

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

# 5. Three VMs: server, client and Kafka VMs in one subnet; Kafka set up on its VM with
#    the pinned release's checksum; the client's run key authorised on the server VM; the
#    run on the client with the servers over ssh and Kafka on its VM; all three deleted.
: >"$GCLOUD_LOG"
"$root/results/gcp/run.sh" --topology three-vm --name tv --subnet s-1 --profile quick \
  --out "$tmp/tv" >"$tmp/tv.log" 2>&1 || { cat "$tmp/tv.log"; fail "the three-vm run failed"; }
for role_type in server:e2-medium client:n2-standard-4 kafka:e2-standard-2; do
  calls | grep -q "instances create tv-${role_type%%:*} --zone us-central1-a --machine-type ${role_type#*:} --subnet s-1" ||
    fail "tv-${role_type%%:*} not created as ${role_type#*:} in subnet s-1"
done
setup=$(calls | grep -n "bash -s -- 10.128.0.4" | cut -d: -f1)
key=$(calls | grep -n "authorized_keys" | cut -d: -f1)
run=$(calls | grep -n "run.sh --on-vm" | cut -d: -f1)
first_delete=$(calls | grep -n "instances delete" | head -1 | cut -d: -f1)
if ! { [ -n "$setup" ] && [ -n "$key" ] && [ -n "$run" ] && [ "$setup" -lt "$run" ] &&
  [ "$key" -lt "$run" ] && [ "$run" -lt "$first_delete" ]; }; then
  fail "order: kafka setup $setup, key $key, run $run, delete $first_delete"
fi
[ -f "$GCLOUD_VMS/tv-kafka/setup.sh" ] && fail "the Kafka VM was not deleted"
grep -qx "kafka=10.128.0.4:9092" "$tmp/tv/summary.md" || fail "Kafka VM not used: $(cat "$tmp/tv/summary.md")"
grep -qx "topology=ssh" "$tmp/tv/summary.md" || fail "not an ssh topology: $(cat "$tmp/tv/summary.md")"
grep -qx "server=$(whoami)@10.128.0.2" "$tmp/tv/summary.md" || fail "server host: $(cat "$tmp/tv/summary.md")"
grep -q "rbench_run" "$tmp/tv/summary.md" || fail "not the run's key: $(cat "$tmp/tv/summary.md")"
[ "$(calls | grep -c "instances delete tv-.* --zone us-central1-a")" -eq 3 ] || fail "not every VM deleted (in its zone)"
left=$(find "$GCLOUD_VMS" -mindepth 1 -maxdepth 1 -name 'tv-*')
[ -z "$left" ] || fail "VMs left behind: $left"

# 6. Kafka's setup fails on its VM: the run stops before any load and all three go.
: >"$GCLOUD_LOG"
if GCLOUD_FAIL=kafka "$root/results/gcp/run.sh" --topology three-vm --name tk --out "$tmp/tk" >"$tmp/tk.log" 2>&1; then
  fail "run.sh succeeded although Kafka's setup failed"
fi
calls | grep -q "run.sh --on-vm" && fail "the bench ran without Kafka"
[ "$(calls | grep -c "instances delete tk-")" -eq 3 ] || fail "not every VM deleted after a failure"

# 7. With --kafka-brokers there is no Kafka VM; the checksum the Kafka VM verifies is the
#    pinned one, checked by sha256sum there.
: >"$GCLOUD_LOG"
"$root/results/gcp/run.sh" --topology three-vm --name tb --kafka-brokers 10.9.9.9:9092 --out "$tmp/tb" \
  >"$tmp/tb.log" 2>&1 || { cat "$tmp/tb.log"; fail "the three-vm run with --kafka-brokers failed"; }
[ "$(calls | grep -c "instances create")" -eq 2 ] || fail "a Kafka VM although --kafka-brokers was given"
grep -qx "kafka=10.9.9.9:9092" "$tmp/tb/summary.md" || fail "brokers not passed: $(cat "$tmp/tb/summary.md")"
# shellcheck source=three-vm.sh source-path=SCRIPTDIR
. "$root/results/gcp/three-vm.sh"
kafka_setup | grep -q "echo \"$KAFKA_SHA256  \$tgz\" | sha256sum -c -" || fail "the setup does not verify the release"
if "$root/results/gcp/run.sh" --topology three-vm --machine-types a,b >/dev/null 2>&1; then
  fail "--topology three-vm with --machine-types was accepted"
fi

echo "test-remote: 7 passed, 0 failed"
