#!/usr/bin/env bash
# The three-VM topology for results/gcp/run.sh (sourced by it: `--topology three-vm`).
#
#   <name>-server   --machine-type (default e2-medium: the blog's 2 vCPU): the servers,
#                   started and measured there over ssh by the probe
#   <name>-client   --client-machine-type (default n2-standard-4): runs `cargo bench`
#   <name>-kafka    --kafka-machine-type (default e2-standard-2): Apache Kafka in KRaft
#                   mode, one broker, a pinned release fetched and checksum-verified on
#                   that VM; not created with --kafka-brokers
#
# All three in one subnet (--subnet, default: the zone's subnet of the default network).
# The client reaches the server VM by ssh with a key made on the client for this run.
# Every VM created is deleted at the end, also when a step fails (unless --keep-vm).

# The variables (name, zone, machine types, subnet, kafka, out, ...) and die() are run.sh's.
# shellcheck disable=SC2154

# The Kafka release the broker VM runs, and its SHA-256 (checked on that VM).
KAFKA_VERSION=3.7.1
KAFKA_SCALA=2.13
KAFKA_SHA256=62acae4a143dd983dc7eb4804d5744ba0c50b199b508f599ef001020e2558fc9

# Piped to `bash -s -- <its internal IP>` on the Kafka VM.
kafka_setup() {
  cat <<SETUP
# rbench: kafka VM setup
set -euo pipefail
ip=\$1
tgz=kafka_${KAFKA_SCALA}-${KAFKA_VERSION}.tgz
sudo apt-get update -qq
sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless curl
curl -fsSLo "\$tgz" "https://archive.apache.org/dist/kafka/${KAFKA_VERSION}/\$tgz"
echo "${KAFKA_SHA256}  \$tgz" | sha256sum -c -
tar -xzf "\$tgz"
cd "kafka_${KAFKA_SCALA}-${KAFKA_VERSION}"
cat >kraft.properties <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@\$ip:9093
listeners=PLAINTEXT://\$ip:9092,CONTROLLER://\$ip:9093
advertised.listeners=PLAINTEXT://\$ip:9092
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=\$HOME/kraft-logs
num.partitions=3
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
PROPS
bin/kafka-storage.sh format -t "\$(bin/kafka-storage.sh random-uuid)" -c kraft.properties
nohup bin/kafka-server-start.sh kraft.properties >kafka.log 2>&1 </dev/null &
for _ in \$(seq 60); do
  if (exec 3<>"/dev/tcp/\$ip/9092") 2>/dev/null; then echo "kafka: listening on \$ip:9092"; exit 0; fi
  sleep 2
done
echo "kafka: not listening after 2 minutes:" >&2
tail -50 kafka.log >&2
exit 1
SETUP
}

three_vm() {
  command -v gcloud >/dev/null 2>&1 || die "gcloud not found: install the Google Cloud SDK, or use --local"
  # Global, not local: the clean-up runs at exit, after this function has returned.
  gflags=(--zone "$zone")
  [ -n "$project" ] && gflags+=(--project "$project")
  local server="$name-server" client="$name-client" broker="$name-kafka"
  created=()
  if [ "$keep_vm" -eq 0 ]; then
    # shellcheck disable=SC2317  # called by the trap
    delete_created() {
      local vm
      for vm in "${created[@]}"; do
        echo "== deleting $vm"
        gcloud compute instances delete "$vm" "${gflags[@]}" --quiet || echo "== could not delete $vm: delete it by hand" >&2
      done
    }
    trap delete_created EXIT
  fi
  create() {
    echo "== creating $1 ($2, Ubuntu 22.04) in $zone, subnet $subnet"
    created+=("$1")
    gcloud compute instances create "$1" "${gflags[@]}" --machine-type "$2" --subnet "$subnet" \
      --image-family ubuntu-2204-lts --image-project ubuntu-os-cloud --boot-disk-size 30GB
  }
  on() { local vm=$1; shift; gcloud compute ssh "$vm" "${gflags[@]}" --command "$*"; }
  internal_ip() {
    gcloud compute instances describe "$1" "${gflags[@]}" --format='get(networkInterfaces[0].networkIP)'
  }
  create "$server" "$machine_type"
  create "$client" "$client_machine_type"
  [ -n "$kafka" ] || create "$broker" "$kafka_machine_type"
  local vm ok
  for vm in "${created[@]}"; do
    echo "== waiting for ssh to $vm"
    ok=0
    for _ in $(seq 1 30); do
      if on "$vm" true >/dev/null 2>&1; then ok=1; break; fi
      sleep 10
    done
    [ "$ok" -eq 1 ] || die "no ssh to $vm after 5 minutes"
  done
  local server_ip
  server_ip=$(internal_ip "$server")
  [ -n "$server_ip" ] || die "no internal IP for $server"
  if [ -z "$kafka" ]; then
    local kafka_ip
    kafka_ip=$(internal_ip "$broker")
    [ -n "$kafka_ip" ] || die "no internal IP for $broker"
    echo "== Kafka ${KAFKA_VERSION} (KRaft, one broker) on $broker ($kafka_ip)"
    kafka_setup | gcloud compute ssh "$broker" "${gflags[@]}" --command "bash -s -- $kafka_ip"
    kafka="$kafka_ip:9092"
  fi
  echo "== the client's key for the server VM (made for this run)"
  local user pubkey
  user=$(on "$server" whoami)
  pubkey=$(on "$client" 'rm -f ~/.ssh/rbench_run ~/.ssh/rbench_run.pub && mkdir -p ~/.ssh && ssh-keygen -q -t ed25519 -N "" -C rbench-run -f ~/.ssh/rbench_run && cat ~/.ssh/rbench_run.pub')
  printf '%s\n' "$pubkey" | gcloud compute ssh "$server" "${gflags[@]}" --command 'mkdir -p ~/.ssh && chmod 700 ~/.ssh && cat >>~/.ssh/authorized_keys && chmod 600 ~/.ssh/authorized_keys'
  # A throwaway VM: the listen backlog the servers ask for (the probe does not change sysctls).
  on "$server" 'sudo sysctl -q -w net.core.somaxconn=4096 || true'
  echo "== copying the source (git HEAD) to $client"
  git -C "$root" archive --format=tar HEAD |
    gcloud compute ssh "$client" "${gflags[@]}" --command 'rm -rf runtime-bench && mkdir runtime-bench && tar -x -C runtime-bench'
  local args=(--on-vm --profile "$profile" --kafka-brokers "$kafka" --server-host "$user@$server_ip")
  local remote_cmd
  printf -v remote_cmd '%q ' results/gcp/run.sh "${args[@]}"
  on "$client" "cd runtime-bench && $remote_cmd"
  mkdir -p "$out"
  gcloud compute scp --recurse "${gflags[@]}" "$client:runtime-bench/results/latest/*" "$out/"
  echo "== results in $out (servers on $server, load from $client, Kafka at $kafka)"
}
