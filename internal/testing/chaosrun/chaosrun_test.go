package chaosrun_test

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/testing/chaos"
	"github.com/zkcoord/zkcoord/internal/testing/chaosrun"
)

var (
	duration = flag.Duration("chaos.duration", 40*time.Second, "how long faults are injected")
	seed     = flag.Int64("chaos.seed", 1, "seed of the fault schedule and the workloads")
	every    = flag.Duration("chaos.every", 2*time.Second, "pause between faults")
	verbose  = flag.Bool("chaos.log", false, "log the harness's actions to stderr")
	linTime  = flag.Duration("chaos.lincheck", time.Minute, "time budget of the linearizability check")
)

// TestRun is the seeded fault-injection run: a short one in the test
// command, a long one with -chaos.duration=30m (make chaos). It prints each
// invariant with its count of checks and violations and fails on any
// violation.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("fault-injection run")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *duration+5*time.Minute)
	defer cancel()
	bin, err := chaos.Build(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	if *verbose {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	// The replicas' and ZooKeeper's logs are kept when the run fails.
	logs, err := os.MkdirTemp("", "zkcoord-chaos-logs-")
	if err != nil {
		t.Fatal(err)
	}
	res, err := chaosrun.Run(ctx, chaosrun.Config{Seed: *seed, Duration: *duration, FaultEvery: *every, Bin: bin, Log: log,
		LinearizableBudget: *linTime, LogDir: logs})
	if err != nil {
		t.Fatalf("%v (replica and ZooKeeper logs kept in %s)", err, logs)
	}
	t.Logf("seed %d, %v of faults:\n%s", *seed, *duration, res)
	if !res.Report.OK() {
		t.Fatalf("invariants violated (replica and ZooKeeper logs kept in %s):\n%s", logs, res.Report.Details())
	}
	_ = os.RemoveAll(logs)
}
