package bench

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// TestHTTPWorkload runs the http workload alone at a tiny scale against a
// private ZooKeeper and a gateway process (no etcd) and checks its
// figures (checkHTTPFigures).
func TestHTTPWorkload(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ZooKeeper and a gateway")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg := Config{Duration: 300 * time.Millisecond, Callers: 4, Pollers: []int{1, 7}, Wakes: 6, Log: &bytes.Buffer{}}
	res := tinyRun(ctx, t, EnvOptions{NoEtcd: true}, cfg, "http")
	checkHTTPFigures(t, res.Figures, cfg.withDefaults())
}

// checkHTTPFigures checks the http workload's figures in figs, run with
// cfg: the HTTP/JSON Lookup's throughput beside gRPC's with its target
// (>= 0.5x gRPC), its p50, and the gateway's CPU per Lookup; for each count of pollers, the long-poll
// wake-up p50 and p99 with the p99's target (<= 50 ms), over every change
// asked for, each made once every poller waited.
func checkHTTPFigures(t *testing.T, figs []Figure, cfg Config) {
	t.Helper()
	get := func(workload, name string) Figure {
		t.Helper()
		for _, f := range figs {
			if strings.HasPrefix(f.Workload, workload) && f.Name == name {
				return f
			}
		}
		t.Errorf("no figure %q / %q", workload, name)
		return Figure{Gateway: math.NaN(), Direct: math.NaN()}
	}
	calls := fmt.Sprintf(" (%d callers)", cfg.Callers)
	thr := get("HTTP/JSON Lookup", "throughput"+calls)
	if !(thr.Gateway > 0) || !(thr.Direct > 0) {
		t.Errorf("HTTP/JSON Lookup throughput: HTTP %v, gRPC %v, want both > 0", thr.Gateway, thr.Direct)
	}
	if thr.Target != ">= 0.5x gRPC" || thr.Met != (thr.Gateway/thr.Direct >= 0.5) {
		t.Errorf("HTTP/JSON Lookup throughput: target %q met %v at %v/%v, want >= 0.5x gRPC", thr.Target, thr.Met, thr.Gateway, thr.Direct)
	}
	if p50 := get("HTTP/JSON Lookup", "p50 latency"+calls); !(p50.Gateway > 0) || !(p50.Direct > 0) {
		t.Errorf("HTTP/JSON Lookup p50: HTTP %v, gRPC %v, want both > 0", p50.Gateway, p50.Direct)
	}
	if cpu := get("HTTP/JSON Lookup", "gateway CPU per Lookup"+calls); !(cpu.Gateway > 0) || !(cpu.Direct > 0) {
		t.Errorf("HTTP/JSON Lookup: gateway CPU per Lookup: HTTP %v µs, gRPC %v µs, want both > 0", cpu.Gateway, cpu.Direct)
	}
	changes := max(cfg.Wakes/cfg.Interleave, 1) * cfg.Interleave
	total := 0
	for _, n := range cfg.Pollers {
		total += n
	}
	for _, n := range cfg.Pollers {
		w := fmt.Sprintf("HTTP long-poll wake-up (%s, %d changes)", plural(n, "poller"), changes)
		p50, p99 := get(w, "change to answer p50"), get(w, "change to answer p99")
		if !(p99.Gateway > 0) || !(p50.Gateway >= 0) || p50.Gateway > p99.Gateway || math.IsInf(p99.Gateway, 0) {
			t.Errorf("%s: p50 %v ms, p99 %v ms", w, p50.Gateway, p99.Gateway)
		}
		if p99.Target != "<= 50 ms" || p99.Met != (p99.Gateway <= 50) {
			t.Errorf("%s: p99 target %q met %v at %v ms, want <= 50 ms", w, p99.Target, p99.Met, p99.Gateway)
		}
		// Each change is made only once every poller of every set waits.
		if f := get(w, "long-polls waiting at each change (fewest)"); f.Gateway != float64(total) {
			t.Errorf("%s: %v long-polls waiting at a change, want every poller's (%d)", w, f.Gateway, total)
		}
	}
}
