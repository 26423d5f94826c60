#!/usr/bin/env bash
# deps.sh: installs, with apt, what zkcoord needs on a Debian 12 machine
# and is missing. `deps.sh run` is what `make run` needs (ZooKeeper and a
# JRE: `zkcoord dev` starts a private ZooKeeper); `deps.sh test` is what
# `make test` needs on top (make, a C compiler for -race, curl and jq for
# docs/HTTP.md's samples, dig for the DNS view's tests and docs/DNS.md,
# Python's and Node's gRPC and PHP with curl for the examples in those
# languages, promtool for the alert rules, headless Chromium for the web
# console's browser test); `deps.sh bench` is what `make bench` needs
# (ZooKeeper, and etcd-server for the etcd beside it). The test and bench
# modes install Debian's etcd-server: internal/etcdserver starts a private
# etcd from /usr/bin/etcd on ports of its own, and its test runs in
# `make test`.
set -euo pipefail

# as_root runs a command as root, through sudo only when not root already.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  else
    sudo "$@"
  fi
}

for_what=${1:-test}
command -v go >/dev/null || { echo "deps.sh: go is not on PATH" >&2; exit 1; }
pkgs=()
# internal/zkserver runs ZooKeeper from Debian's package.
if [ ! -f /usr/share/java/zookeeper.jar ] || ! command -v java >/dev/null; then
  pkgs+=(zookeeper default-jre-headless)
fi
etcd_new=no
if [ "$for_what" = test ] || [ "$for_what" = bench ]; then
  # internal/etcdserver (and zkcoord-bench's etcd beside ZooKeeper) runs
  # Debian's etcd 3.4.
  if [ ! -x /usr/bin/etcd ]; then
    pkgs+=(etcd-server)
    etcd_new=yes
  fi
fi
if [ "$for_what" = test ]; then
  # `make tools` needs make; -race needs cgo, and cgo a C compiler.
  command -v make >/dev/null || pkgs+=(make)
  command -v "$(go env CC)" >/dev/null || pkgs+=(gcc libc6-dev)
  # docs/HTTP.md's samples (TestHTTPDoc) run curl and jq.
  command -v curl >/dev/null || pkgs+=(curl)
  command -v jq >/dev/null || pkgs+=(jq)
  # The DNS view's tests (internal/dnsview) and docs/DNS.md's samples run dig.
  command -v dig >/dev/null || pkgs+=(dnsutils)
  # The Python examples (TestPolyglot) run Debian's /usr/bin/python3 with
  # its gRPC packages, which generate their stubs from proto/ too.
  /usr/bin/python3 -c 'import grpc, grpc_tools.protoc' 2>/dev/null || pkgs+=(python3-grpcio python3-grpc-tools)
  # The Node examples: the test runs `npm ci` in examples/node.
  command -v node >/dev/null || pkgs+=(nodejs)
  command -v npm >/dev/null || pkgs+=(npm)
  # The alert rules' test (deploy_test.go) runs promtool, from Debian's
  # prometheus package (its service is not needed, nor started here).
  command -v promtool >/dev/null || pkgs+=(prometheus)
  # The web console's test (internal/console) drives headless Chromium
  # through chromedp.
  command -v chromium >/dev/null || pkgs+=(chromium)
  # The PHP examples (examples/php_test.go) run php with its curl extension.
  { command -v php >/dev/null && php -r 'exit(extension_loaded("curl") ? 0 : 1);'; } || pkgs+=(php8.2-cli php8.2-curl)
fi
if [ "${#pkgs[@]}" -gt 0 ]; then
  echo "installing ${pkgs[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "${pkgs[@]}"
fi
# The package's unit starts a system etcd on 2379 where systemd runs; the
# bench and the tests start their own, so one that this script installed
# is stopped and disabled (a system etcd that was there before is left
# alone).
if [ "$etcd_new" = yes ] && command -v systemctl >/dev/null && systemctl is-enabled --quiet etcd 2>/dev/null; then
  as_root systemctl disable --now etcd || true
fi
