#!/usr/bin/env bash
# test.sh: the one command CI and the README use (`make test` runs it).
#
# On a fresh Debian 12 machine it installs what the tests need
# (scripts/deps.sh: ZooKeeper, a JRE, curl, jq, ... from apt, when
# missing), builds the pinned tools into bin/,
# checks that gen/ is up to date, lints the protos, vets the Go code, and
# runs every test against a real ZooKeeper, then the race detector over the
# packages it can run on (see below).
#
# Extra arguments go to `go test`, before the package pattern:
#   ./scripts/test.sh -run TestElection -v
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/bin:$PATH"

section() { printf '\n==> %s\n' "$*"; }

section "dependencies"
./scripts/deps.sh test
go version
java -version 2>&1 | sed -n 1p

section "tools (make tools)"
make tools

section "generated code (scripts/check-gen.sh)"
./scripts/check-gen.sh

section "buf lint"
bin/buf lint

section "go vet"
go vet ./...

section "go test"
# Every test, against a real ZooKeeper (and the short fault-injection run).
go test -count=1 -timeout 12m "$@" ./...

section "go test -race"
# The race detector over the packages whose tests never reconnect a
# ZooKeeper session: go-zookeeper v1.0.4 has a known data race on
# Conn.lastZxid between its receive loop and sendSetWatches on reconnect
# (go-zookeeper/zk PR #35, unfixed), which fails any -race test that cuts a
# connection while requests are in flight. Run the rest with -race by hand:
#   go test -race ./internal/...   (expect that race, only that race)
go test -race -count=1 -timeout 12m "$@" ./internal/validate/ ./internal/auth/ ./internal/testing/checker/ ./internal/barrier/ \
  ./client/ ./cmd/... ./examples/...
