package bench

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/testing/chaos"
)

// TestTinyRun runs every workload at a tiny scale against a private
// ZooKeeper, a gateway process and a private etcd. It checks what holds at
// any scale (every etcd counterpart measured, no
// ZooKeeper write per keepalive, one ZooKeeper watch per group, one watch
// notification per failover, every figure measured, the plot written),
// not speeds: those are the full run's (docs/BENCHMARKS.md).
func TestTinyRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ZooKeeper and a gateway")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	cfg := Config{Duration: 200 * time.Millisecond, Concurrency: []int{1, 2}, Callers: 2, Streams: 50, DirectWatch: 5,
		Changes: 2, Candidates: 5, Failovers: 4, Waiters: 5, Participants: 10, Rounds: 1, Sizes: []int{10, 50}, KeepAlives: 200,
		PHPProcs: 5, MuxWatches: []int{40}, MuxStreams: 4, Pollers: []int{1, 5}, Wakes: 3, Log: &progress}
	res := tinyRun(ctx, t, EnvOptions{}, cfg)
	// A line as each workload starts and one as it ends, with its time.
	for i, w := range Workloads {
		n := fmt.Sprintf("== [%d/%d] %s", i+1, len(Workloads), w.Name)
		if !strings.Contains(progress.String(), n+"\n") || !regexp.MustCompile(regexp.QuoteMeta(n)+` took \S+ \(run \S+\)\n`).MatchString(progress.String()) {
			t.Errorf("progress has no start or end line for %s", w.Name)
		}
	}
	byName := map[string]Figure{}
	for _, f := range res.Figures {
		byName[f.Workload+": "+f.Name] = f
		// Memory per stream is a difference of two process samples: at
		// 50 streams the runtime returning a few pages to the OS can make
		// it negative, so only its finiteness is checked here.
		delta := strings.Contains(f.Name, "per idle stream") || strings.Contains(f.Name, "per idle watch")
		if math.IsNaN(f.Gateway) || math.IsInf(f.Gateway, 0) || (f.Gateway < 0 && !delta) {
			t.Errorf("%s %s: gateway figure %v", f.Workload, f.Name, f.Gateway)
		}
	}
	find := func(workload, name string) Figure {
		t.Helper()
		for k, f := range byName {
			if strings.HasPrefix(k, workload) && strings.Contains(k, name) {
				return f
			}
		}
		t.Fatalf("no figure %q / %q in %v", workload, name, keys(byName))
		return Figure{}
	}
	if f := find("KeepAlive", "ZooKeeper writes per keepalive"); f.Gateway != 0 {
		t.Errorf("keepalives wrote to ZooKeeper: %v writes each (%s)", f.Gateway, f.Note)
	}
	if f := find("WatchGroup fan-out", "ZooKeeper watches for the group"); f.Gateway != 1 || f.Direct != float64(cfg.DirectWatch) {
		t.Errorf("watches on the group: zkcoord %v (want 1), direct %v (want %d)", f.Gateway, f.Direct, cfg.DirectWatch)
	}
	if f := find("Campaign", "watch notifications per failover"); f.Gateway != 1 || f.Direct != 1 {
		t.Errorf("watches per candidate znode: zkcoord %v, direct %v, want 1 (%s)", f.Gateway, f.Direct, f.Note)
	}
	if f := find("Lock handover", "watch notifications per handover"); f.Gateway != 1 || f.Direct != 1 {
		t.Errorf("watch notifications per lock handover: zkcoord %v, direct %v, want 1 (%s)", f.Gateway, f.Direct, f.Note)
	}
	if f := find("Lock acquire+release", "acquire+release/s (2 callers)"); f.Gateway <= 0 || f.Direct <= 0 {
		t.Errorf("locks: no throughput measured: %+v", f)
	}
	for _, q := range [][2]string{{"Lookup cached", "throughput"}, {"Lookup linearizable", "throughput"}, {"Register+Deregister", "pairs/s"}} {
		if f := find(q[0], q[1]); f.Gateway <= 0 || f.Direct <= 0 {
			t.Errorf("%s: no throughput measured: %+v", q[0], f)
		}
	}
	// Every etcd counterpart is measured, and the targets against etcd are
	// there.
	for _, q := range [][2]string{
		{"Lookup cached", "throughput"}, {"Lookup linearizable", "throughput (2 callers)"}, {"Lookup linearizable", "p50 latency (1 caller)"},
		{"Register+Deregister", "pairs/s"}, {"One-shot registration", "registrations/s"}, {"KeepAlive", "keepalives/s"},
		{"WatchGroup fan-out", "change to every stream p99"}, {"Campaign", "failover after resign p50"},
		{"Growth (50 members)", "Lookup one member p50"}, {"Growth (50 members)", "Register+Deregister p50"},
	} {
		if f := find(q[0], q[1]); !(f.Etcd > 0) {
			t.Errorf("%s %s: etcd figure %v, want > 0", f.Workload, f.Name, f.Etcd)
		}
	}
	if f, ok := byName["Growth (50 members): WatchGroup snapshot"]; !ok || !(f.Etcd > 0) {
		t.Errorf("growth: no etcd whole-prefix Get beside the snapshot: %+v", f)
	}
	for _, q := range [][3]string{
		{"Lookup linearizable", "throughput (2 callers)", ">= 1x etcd"}, {"Lookup linearizable", "p50 latency (1 caller)", "<= 1.5x etcd"},
		{"Register+Deregister", "pairs/s", ">= 1x etcd"}, {"Campaign", "failover after resign p50", "<= 1x etcd"},
		{"Watch fan-out", "change to every watch p99", "<= 1x etcd"}, // multiplexed, as etcd's watchers
	} {
		if f := find(q[0], q[1]); f.EtcdTarget != q[2] {
			t.Errorf("%s %s: etcd target %q, want %q", f.Workload, f.Name, f.EtcdTarget, q[2])
		}
	}
	if f := find("Campaign", "failover after resign p50"); f.Target != "<= 1.2x direct" { // issue 15's other target
		t.Errorf("campaign p50: target %q, want <= 1.2x direct", f.Target)
	}
	if f := find("WatchGroup fan-out", "change to every stream p99"); f.EtcdTarget != "" || math.IsNaN(f.Etcd) || f.Target != "<= 250 ms" {
		t.Errorf("one-group streams: target %q and %q against etcd (its figure %v), want <= 250 ms, none against etcd beside its figure", f.Target, f.EtcdTarget, f.Etcd)
	}
	if f := find("WatchGroup fan-out", "heap+stacks per idle stream"); f.Target != "<= 8 KiB" {
		t.Errorf("one-group streams: memory target %q, want issue 15's <= 8 KiB", f.Target)
	}
	if f := find("Watch fan-out", "heap+stacks per idle watch"); f.HasTarget() { // 40 watches: under memJudgedFrom
		t.Errorf("multiplexed watches: memory of 40 watches judged (%q): it is within the heap's variation", f.Target)
	}
	if f := find("Watch fan-out", "memory per idle watch (RSS)"); f.HasTarget() {
		t.Errorf("RSS per watch judged (%q): it can read negative", f.Target)
	}
	if f := find("WatchGroup fan-out", "memory per idle stream"); math.IsNaN(f.Etcd) || !strings.Contains(f.Workload, "etcd: 50 watchers") {
		t.Errorf("fan-out: etcd memory per watcher %v in %q", f.Etcd, f.Workload)
	}
	// etcd's heap+stacks, read from its /metrics after a GC forced through
	// its pprof endpoint.
	if f := find("WatchGroup fan-out", "heap+stacks per idle stream"); math.IsNaN(f.Etcd) || math.IsInf(f.Etcd, 0) {
		t.Errorf("fan-out: etcd heap+stacks per watcher %v", f.Etcd)
	}
	if f := find("PHP processes", "ZooKeeper sessions opened per process"); f.Gateway != 0 || f.Direct < 1 {
		t.Errorf("sessions opened per PHP process: zkcoord %v (want 0), direct %v (want 1)", f.Gateway, f.Direct)
	}
	if f := find("PHP processes", "members visible right after the run"); f.Gateway != float64(cfg.PHPProcs) || f.Direct != 0 {
		t.Errorf("members left by the PHP processes: zkcoord %v (want %d), direct %v (want 0)", f.Gateway, cfg.PHPProcs, f.Direct)
	}
	if f := find("Semaphore handover", "ZooKeeper watches while they wait"); f.Gateway != 1 || f.Direct != float64(cfg.Waiters-1) {
		t.Errorf("watches while %d wait on a semaphore: zkcoord %v (want 1), direct %v (want %d)", cfg.Waiters, f.Gateway, f.Direct, cfg.Waiters-1)
	}
	find("Semaphore (4 permits)", "acquire+release pairs/s")
	checkHTTPFigures(t, res.Figures, cfg.withDefaults())
	find("AwaitBarrier", "release after the last arrival p99")
	find("Growth (50 members)", "WatchGroup snapshot")
	find("Growth 10 -> 50", "Lookup p50 growth")

	png := filepath.Join(t.TempDir(), "bench.png")
	if err := Plot(res.Points, png); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(png)
	if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Fatalf("plot is not a PNG: %v", err)
	}
	var table bytes.Buffer
	WriteTable(&table, res.Figures)
	t.Logf("\n%s", table.String())
}

// tinyRun builds zkcoord, sets up opt's environment (a private ZooKeeper,
// a gateway process, and etcd unless opt.NoEtcd) and runs the workloads
// named (all when none) with cfg, whose Log must be a *bytes.Buffer: the
// progress, logged, and with the environment's logs on failure.
func tinyRun(ctx context.Context, t *testing.T, opt EnvOptions, cfg Config, workloads ...string) Results {
	t.Helper()
	bin, err := chaos.Build(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	opt.Bin, opt.Log = bin, &logs
	env, err := Setup(ctx, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	progress := cfg.Log.(*bytes.Buffer)
	res, err := NewRunner(env, cfg).Run(ctx, workloads...)
	if err != nil {
		t.Fatalf("%v\nprogress:\n%s\nlogs:\n%s", err, progress.String(), logs.String())
	}
	t.Logf("progress:\n%s", progress.String())
	return res
}

func keys(m map[string]Figure) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
