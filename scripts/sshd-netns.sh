#!/usr/bin/env bash
# A throwaway ssh server host for the ssh topology's tests: an sshd in a network namespace
# of its own, joined to this one by a veth pair, accepting only a key made here for it.
#
#   scripts/sshd-netns.sh up NAME DIR     make it; prints BENCH_SERVER_HOST and BENCH_SSH_OPTS
#   scripts/sshd-netns.sh down NAME DIR   end every process in it, remove it and DIR
#
# NAME is the namespace (rbench-<pid>-sshd: a run's leftover clean-up knows the prefix),
# DIR holds the keys, the config and sshd's log. Needs root, iproute2 and openssh-server
# (scripts/setup.sh installs them). The server side is 10.214.0.2, this side 10.214.0.1.
set -euo pipefail

cmd=${1:?usage: $0 up|down NAME DIR}
name=${2:?namespace name}
dir=${3:?directory}
# veth names: 15 characters at most, unique per namespace.
tag=$(printf '%s' "$name" | cksum | cut -c1-8)
host_if="rbh$tag"
ns_if="rbn$tag"

down() {
  if ip netns list | grep -qw "$name"; then
    # Whatever runs in it (sshd, the probe, servers) ends with it.
    for pid in $(ip netns pids "$name" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null || true; done
    sleep 0.5
    for pid in $(ip netns pids "$name" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$name"
  fi
  ip link del "$host_if" 2>/dev/null || true
  rm -rf "$dir"
}

case "$cmd" in
  up)
    [ "$(id -u)" -eq 0 ] || { echo "$0: needs root (namespaces)" >&2; exit 1; }
    [ -x /usr/sbin/sshd ] || { echo "$0: /usr/sbin/sshd missing: run scripts/setup.sh (openssh-server)" >&2; exit 1; }
    command -v ip >/dev/null 2>&1 || { echo "$0: ip missing: run scripts/setup.sh (iproute2)" >&2; exit 1; }
    down
    if ip -br addr | grep -q ' 10\.214\.0\.1/'; then
      echo "$0: 10.214.0.1 is already in use ($(ip -br addr | grep ' 10\.214\.0\.1/' | cut -d' ' -f1)): another sshd-netns host is up; end it with: $0 down <its NAME> <its DIR>" >&2
      exit 1
    fi
    mkdir -p "$dir" /run/sshd
    chmod 700 "$dir"
    ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key"
    ssh-keygen -q -t ed25519 -N '' -f "$dir/client_key"
    cp "$dir/client_key.pub" "$dir/authorized_keys"
    cat >"$dir/sshd_config" <<CONF
ListenAddress 10.214.0.2
Port 22
HostKey $dir/host_key
AuthorizedKeysFile $dir/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowTcpForwarding yes
PidFile $dir/sshd.pid
CONF
    ip netns add "$name"
    ip link add "$host_if" type veth peer name "$ns_if"
    ip link set "$ns_if" netns "$name"
    ip addr add 10.214.0.1/24 dev "$host_if"
    ip link set "$host_if" up
    ip -n "$name" addr add 10.214.0.2/24 dev "$ns_if"
    ip -n "$name" link set "$ns_if" up
    ip -n "$name" link set lo up
    ip netns exec "$name" /usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log"
    for _ in $(seq 50); do
      [ -s "$dir/sshd.pid" ] && break
      sleep 0.1
    done
    [ -s "$dir/sshd.pid" ] || { echo "$0: sshd did not start:" >&2; cat "$dir/sshd.log" >&2; down; exit 1; }
    echo "BENCH_SERVER_HOST=root@10.214.0.2"
    echo "BENCH_SSH_OPTS=-i $dir/client_key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
    ;;
  down) down ;;
  *) echo "usage: $0 up|down NAME DIR" >&2; exit 2 ;;
esac
