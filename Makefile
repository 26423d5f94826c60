# zkcoord make targets. `make test` is the command CI runs (see README).
SHELL := /bin/bash
BIN := $(CURDIR)/bin
export PATH := $(BIN):$(PATH)

.PHONY: tools gen lint check-gen test test-short run build chaos soak bench

build:
	go build -o $(BIN)/zkcoord ./cmd/zkcoord
	go build -o $(BIN)/zkcoord-bench ./cmd/zkcoord-bench
	if [ "$$(go env GOOS)" = linux ]; then go build -o $(BIN)/zkwriteprobe ./cmd/zkwriteprobe; fi

# tools builds the pinned code generators and grpcurl (tools/go.mod) into bin/.
tools:
	cd tools && GOBIN=$(BIN) go install tool

# gen regenerates gen/ from proto/.
gen: tools
	buf generate

lint: tools
	buf lint
	go vet ./...

# check-gen fails when gen/ differs from what proto/ generates.
check-gen: tools
	./scripts/check-gen.sh

# test installs what the tests need (ZooKeeper included) and runs every test.
# Pass go test flags with TESTFLAGS, e.g. make test TESTFLAGS='-run TestLease -v'.
test:
	./scripts/test.sh $(TESTFLAGS)

# test-short runs the fast tests only: go test -short, with no install, no
# race detector and no gen/lint checks; tests that need ZooKeeper should skip
# when testing.Short() is true.
test-short:
	go test -short -count=1 ./...

# run installs what `zkcoord dev` needs when missing (ZooKeeper and a JRE,
# from apt), builds, and serves on a private ZooKeeper: gRPC on
# 127.0.0.1:7070, HTTP/JSON on 127.0.0.1:7071.
run: build
	./scripts/deps.sh run
	$(BIN)/zkcoord dev

# chaos runs the fault-injection run for CHAOS_DURATION (default 30m) with
# CHAOS_SEED, and prints each invariant with its checks and violations
# (CHAOS_LINCHECK: the linearizability checker's time budget).
CHAOS_DURATION ?= 30m
CHAOS_SEED ?= 1
CHAOS_LINCHECK ?= 3m
chaos:
	go test -count=1 -timeout 0 -run TestRun -v ./internal/testing/chaosrun/ \
		-chaos.duration=$(CHAOS_DURATION) -chaos.seed=$(CHAOS_SEED) -chaos.lincheck=$(CHAOS_LINCHECK)

# soak churns hundreds of clients against two replicas for SOAK_DURATION
# (default 30m), printing goroutines, heap, open files and znodes each minute.
SOAK_DURATION ?= 30m
soak:
	go test -count=1 -timeout 0 -run TestSoak -v ./internal/testing/chaosrun/ -chaos.soak=$(SOAK_DURATION)

# bench runs every benchmark workload against a private ZooKeeper (fsync on)
# and a gateway process, and beside them a private etcd (fsync on; deps.sh
# bench installs Debian's etcd-server), printing each figure beside direct
# go-zookeeper and etcd with both ratios and the targets, and writes
# docs/bench/ (bench.json, bench.md, bench.png). BENCHFLAGS adds flags,
# e.g. BENCHFLAGS='-workloads lookup' or BENCHFLAGS=-no-etcd.
bench: build
	./scripts/deps.sh bench
	$(BIN)/zkcoord-bench -out docs/bench -log /tmp/zkcoord-bench.log $(BENCHFLAGS)
