#!/usr/bin/env bash
# Runs a command against a real Kafka-compatible broker: tansu 0.6 (a Rust Kafka broker),
# in memory, on a free loopback port. Installs tansu once if it is missing (about 11-17
# minutes on 2 cores; the binary is reused afterwards). The broker is always stopped.
#
#   scripts/with-tansu.sh cargo test --workspace
#
# The command sees KAFKA_BROKERS=127.0.0.1:PORT.
set -euo pipefail

TANSU_VERSION=0.6.0
if ! command -v tansu >/dev/null 2>&1 || ! tansu --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
  echo "with-tansu: installing tansu $TANSU_VERSION (cargo install; one-time)" >&2
  cargo install tansu --version "$TANSU_VERSION" --no-default-features --features dynostore --locked
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp -t tansu.XXXXXX.log)
tansu broker \
  --listener-url "tcp://127.0.0.1:$port" \
  --advertised-listener-url "tcp://127.0.0.1:$port" \
  --storage-engine memory://tansu/ >"$log" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
trap cleanup EXIT

for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    break
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "with-tansu: tansu exited at start:" >&2
    cat "$log" >&2
    exit 1
  fi
  sleep 0.1
done
echo "with-tansu: tansu $TANSU_VERSION on 127.0.0.1:$port (log $log)" >&2
KAFKA_BROKERS="127.0.0.1:$port" "$@"
