#!/usr/bin/env bash
# Reproduce runtime-bench on a 2-core GCP VM like the blog's (Ubuntu 22.04, 2 vCPU, ~4 GB),
# or run the same on-VM steps on this machine.
#
#   results/gcp/run.sh [options]            create a VM, run `cargo bench` there, copy the
#                                           results back to results/gcp-runs/<vm>/, delete it
#   results/gcp/run.sh --local [options]    the on-VM steps here, quick profile (what CI runs)
#
# Options:
#   --project ID          GCP project (default: gcloud's configured project)
#   --zone ZONE           default us-central1-a
#   --machine-type TYPE   default e2-medium (2 vCPU, 4 GB: the blog's size; shared-core, so
#                         also try n2-standard-2 for steadier numbers)
#   --machine-types A,B   a machine matrix: one VM per type, created and run in parallel
#                         (each deleted afterwards, also on failure), results in
#                         <out>/<type>/, logs in <out>/<type>.log, then one comparison page
#                         over every type that ran (<out>/compare.html); a type that fails
#                         (quota, no io_uring, ...) is reported and the others go on
#   --name NAME           VM name (default runtime-bench-<date>)
#   --profile P           quick | default | full (default: default; --local: quick)
#   --kafka-brokers B     a Kafka cluster reachable from the VM (default: embedded broker)
#   --topology T          single (default): one VM runs everything; three-vm: a server VM
#                         (--machine-type), a client VM running cargo bench
#                         (--client-machine-type, default n2-standard-4) and a Kafka VM
#                         (--kafka-machine-type, default e2-standard-2; skipped with
#                         --kafka-brokers), in one subnet (--subnet, default "default"),
#                         the servers reached over ssh (results/gcp/three-vm.sh)
#   --keep-vm             do not delete the VM afterwards
#   --out DIR             where results go (default results/gcp-runs/<name>, or with
#                         --local target/gcp-local)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

mode=remote
project=""
zone=us-central1-a
machine_type=e2-medium
machine_types=""
name="runtime-bench-$(date -u +%Y%m%d-%H%M%S)"
profile=""
kafka=""
keep_vm=0
out=""
topology=single
client_machine_type=n2-standard-4
kafka_machine_type=e2-standard-2
subnet=default
server_host=""

die() { echo "gcp/run.sh: $*" >&2; exit 2; }
need_arg() { if [ $# -lt 2 ] || [ -z "$2" ]; then die "$1 needs a value"; fi; }

while [ $# -gt 0 ]; do
  case "$1" in
    --local) mode=local ;;
    --on-vm) mode=on-vm ;;
    --project) need_arg "$@"; project=$2; shift ;;
    --zone) need_arg "$@"; zone=$2; shift ;;
    --machine-type) need_arg "$@"; machine_type=$2; shift ;;
    --machine-types) need_arg "$@"; machine_types=$2; shift ;;
    --name) need_arg "$@"; name=$2; shift ;;
    --profile) need_arg "$@"; profile=$2; shift ;;
    --kafka-brokers) need_arg "$@"; kafka=$2; shift ;;
    --keep-vm) keep_vm=1 ;;
    --out) need_arg "$@"; out=$2; shift ;;
    --topology) need_arg "$@"; topology=$2; shift ;;
    --client-machine-type) need_arg "$@"; client_machine_type=$2; shift ;;
    --kafka-machine-type) need_arg "$@"; kafka_machine_type=$2; shift ;;
    --subnet) need_arg "$@"; subnet=$2; shift ;;
    # Internal (three-vm, on the client VM): the servers' host over ssh.
    --server-host) need_arg "$@"; server_host=$2; shift ;;
    -h|--help) sed -n '2,35p' "$0"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
  shift
done

case "$mode" in
  local) profile=${profile:-quick}; out=${out:-$root/target/gcp-local} ;;
  *) profile=${profile:-default}; out=${out:-$root/results/gcp-runs/$name} ;;
esac
case "$profile" in quick|default|full) ;; *) die "--profile $profile: expected quick, default or full" ;; esac
case "$topology" in
  single) ;;
  three-vm) [ -z "$machine_types" ] || die "--topology three-vm takes one --machine-type (the server VM's), not --machine-types" ;;
  *) die "--topology $topology: expected single or three-vm" ;;
esac

# On the VM (or here): packages, Rust, limits, the bench, the results.
on_vm() {
  cd "$root"
  echo "== packages"
  "$root/scripts/setup.sh"
  if ! command -v cargo >/dev/null 2>&1; then
    echo "== rust (rustup, stable)"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
  fi
  echo "== limits"
  # The bench raises its own fd soft limit up to the hard limit; raise the soft limit here
  # too for anything else started from this shell.
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  echo "open files: $(ulimit -n)"
  if [ "$mode" = on-vm ] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    # A throwaway VM: allow the listen backlog the servers ask for, and the widest port range.
    sudo sysctl -q -w net.core.somaxconn=4096 net.ipv4.ip_local_port_range="1024 65535" || true
  fi
  echo "somaxconn: $(cat /proc/sys/net/core/somaxconn); ports: $(cat /proc/sys/net/ipv4/ip_local_port_range)"
  if [ -n "$server_host" ]; then
    # Three VMs: the servers on their own VM, reached with the key made for this run.
    export BENCH_TOPOLOGY=ssh BENCH_SERVER_HOST="$server_host"
    export BENCH_SSH_OPTS="-i $HOME/.ssh/rbench_run -o StrictHostKeyChecking=accept-new"
  fi
  echo "== cargo bench (profile $profile${kafka:+, KAFKA_BROKERS=$kafka}${server_host:+, servers on $server_host})"
  if [ -n "$kafka" ]; then
    BENCH_PROFILE=$profile KAFKA_BROKERS=$kafka cargo bench --locked
  else
    BENCH_PROFILE=$profile cargo bench --locked
  fi
  mkdir -p "$out"
  cp -r "$root/results/latest/." "$out/"
  echo "== results in $out"
}

remote() {
  command -v gcloud >/dev/null 2>&1 || die "gcloud not found: install the Google Cloud SDK, or use --local"
  # Global, not local: the exit trap that deletes the VM runs after this function returns.
  gflags=(--zone "$zone")
  [ -n "$project" ] && gflags+=(--project "$project")
  echo "== creating $name ($machine_type, Ubuntu 22.04) in $zone"
  gcloud compute instances create "$name" "${gflags[@]}" \
    --machine-type "$machine_type" \
    --image-family ubuntu-2204-lts --image-project ubuntu-os-cloud \
    --boot-disk-size 30GB
  if [ "$keep_vm" -eq 0 ]; then
    trap 'echo "== deleting $name"; gcloud compute instances delete "$name" "${gflags[@]}" --quiet' EXIT
  fi
  echo "== waiting for ssh"
  local ok=0
  for _ in $(seq 1 30); do
    if gcloud compute ssh "$name" "${gflags[@]}" --command true >/dev/null 2>&1; then ok=1; break; fi
    sleep 10
  done
  [ "$ok" -eq 1 ] || die "no ssh to $name after 5 minutes"
  echo "== copying the source (git HEAD)"
  git -C "$root" archive --format=tar HEAD |
    gcloud compute ssh "$name" "${gflags[@]}" --command 'rm -rf runtime-bench && mkdir runtime-bench && tar -x -C runtime-bench'
  local args=(--on-vm --profile "$profile")
  [ -n "$kafka" ] && args+=(--kafka-brokers "$kafka")
  # Quoted for the remote shell: a value with a space or a quote arrives as one argument.
  local remote_cmd
  printf -v remote_cmd '%q ' results/gcp/run.sh "${args[@]}"
  gcloud compute ssh "$name" "${gflags[@]}" --command "cd runtime-bench && $remote_cmd"
  mkdir -p "$out"
  gcloud compute scp --recurse "${gflags[@]}" "$name:runtime-bench/results/latest/*" "$out/"
  echo "== results in $out; compare with:"
  echo "   cargo run -p runtime-bench --bin report -- --compare results/reference/dev-2core-efficiency-1 $out"
}

# One VM per machine type, in parallel: this script again per type, in the background.
matrix() {
  local types t i
  IFS=, read -r -a types <<<"$machine_types"
  [ "${#types[@]}" -gt 0 ] || die "--machine-types: no type given"
  mkdir -p "$out"
  local pids=()
  for t in "${types[@]}"; do
    local args=(--machine-type "$t" --name "$name-$t" --zone "$zone" --profile "$profile" --out "$out/$t")
    [ -n "$project" ] && args+=(--project "$project")
    [ -n "$kafka" ] && args+=(--kafka-brokers "$kafka")
    [ "$keep_vm" -eq 1 ] && args+=(--keep-vm)
    echo "== $t: $name-$t (log: $out/$t.log)"
    "$0" "${args[@]}" >"$out/$t.log" 2>&1 &
    pids+=("$!")
  done
  local ran=() failed=()
  for i in "${!types[@]}"; do
    if wait "${pids[$i]}"; then ran+=("$out/${types[$i]}"); else failed+=("${types[$i]}"); fi
  done
  echo "== ran: ${#ran[@]} of ${#types[@]} types${failed:+; FAILED: ${failed[*]} (see their logs)}"
  if [ "${#ran[@]}" -gt 0 ]; then
    echo "== comparing them: $out/compare.html"
    (cd "$root" && cargo run --locked -q -p runtime-bench --bin report -- --compare "${ran[@]}" --out "$out/compare.html" >"$out/compare.md")
  fi
  [ "${#failed[@]}" -eq 0 ]
}

# shellcheck source=three-vm.sh source-path=SCRIPTDIR
. "$here/three-vm.sh"

case "$mode" in
  remote)
    if [ "$topology" = three-vm ]; then three_vm
    elif [ -n "$machine_types" ]; then matrix
    else remote
    fi ;;
  local|on-vm) on_vm ;;
esac
