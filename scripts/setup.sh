#!/usr/bin/env bash
# Install what the tests and benchmarks need, idempotently: the Python kubernetes
# client (tests/python), curl, dig (dnsutils; tests/dns.rs queries the cluster's DNS
# with it), Debian's docker-registry (the OCI registry tests/images.rs pulls from;
# the tests start their own instances, so its system service is left alone), and
# with MINKE_BENCH=1 the benchmark peers (etcd, wasmtime-cli 48, wrk, dnsperf and knot;
# benches/dns.rs runs its own knotd, so knot's system service is left alone).
set -euo pipefail

need_apt=()
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v dig >/dev/null 2>&1 || need_apt+=(dnsutils)
[ -x /usr/bin/docker-registry ] || command -v docker-registry >/dev/null 2>&1 || need_apt+=(docker-registry)
if [ "${MINKE_BENCH:-0}" = 1 ]; then
  command -v etcd >/dev/null 2>&1 || need_apt+=(etcd-server)
  command -v etcdctl >/dev/null 2>&1 || need_apt+=(etcd-client)
  command -v dnsperf >/dev/null 2>&1 || need_apt+=(dnsperf)
  command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
  command -v knotd >/dev/null 2>&1 || [ -x /usr/sbin/knotd ] || need_apt+=(knot)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    sudo apt-get update -qq >/dev/null && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  fi
  # The package enables a system registry on :5000; the tests need none of it.
  if [[ " ${need_apt[*]} " == *" docker-registry "* ]] && command -v systemctl >/dev/null 2>&1; then
    $( [ "$(id -u)" = 0 ] || echo sudo ) systemctl disable --now docker-registry >/dev/null 2>&1 || true
  fi
  if [[ " ${need_apt[*]} " == *" knot "* ]] && command -v systemctl >/dev/null 2>&1; then
    $( [ "$(id -u)" = 0 ] || echo sudo ) systemctl disable --now knot >/dev/null 2>&1 || true
  fi
fi
python3 -c 'import kubernetes' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check kubernetes
# The pod benchmark's peer for instance start: `wasmtime run` of the same component
# (wasmtime-cli matching our engine; a slow build, so only for benchmarks).
if [ "${MINKE_BENCH:-0}" = 1 ] && ! wasmtime --version 2>/dev/null | grep -q '^wasmtime 48\.'; then
  cargo install --quiet wasmtime-cli --version 48.0.8 --locked
fi
