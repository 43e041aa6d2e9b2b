#!/usr/bin/env bash
# Installs what the build and tests need on a fresh Debian/Ubuntu machine. Idempotent.
# librdkafka is built from source by rdkafka-sys (needs a C compiler, make, zlib headers
# are vendored by the libz feature); no Kafka broker is needed (an embedded one is used).
set -euo pipefail

need=()
command -v cc >/dev/null 2>&1 || need+=(gcc)
command -v make >/dev/null 2>&1 || need+=(make)
command -v perl >/dev/null 2>&1 || need+=(perl)
# CI lints the shell scripts (results/gcp/run.sh must pass shellcheck).
if [ "${CI:-}" = true ]; then command -v shellcheck >/dev/null 2>&1 || need+=(shellcheck); fi
command -v python3 >/dev/null 2>&1 || need+=(python3)
# BENCH_TOPOLOGY=netns and its tests make namespaces and links with iproute2.
command -v ip >/dev/null 2>&1 || need+=(iproute2)
# BENCH_TOPOLOGY=ssh reaches the servers' host with the ssh client; its test starts an sshd
# in a namespace of its own (never the system's service).
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}"
fi
command -v cargo >/dev/null 2>&1 || { echo "setup: cargo not found: install Rust (rustup) first" >&2; exit 1; }
rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy || true
echo "setup: ok"
