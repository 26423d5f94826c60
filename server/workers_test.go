package server_test

import (
	"context"
	"runtime/metrics"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/zkcoord/zkcoord/internal/testing/testenv"
	"github.com/zkcoord/zkcoord/server"
)

// goroutinesCreated is how many goroutines the process has created so far.
func goroutinesCreated(t *testing.T) uint64 {
	s := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		t.Fatalf("runtime/metrics: %s unsupported", s[0].Name)
	}
	return s[0].Value.Uint64()
}

// TestCallsRunOnKeptGoroutines: with stream workers (the default, or set), calls
// one after another run on goroutines the server keeps, so the process
// creates next to no goroutine per call; with WithStreamWorkers(0), each
// call gets one of its own (grpc-go's default), and its stack grows anew.
// The gateway runs in this process, so the runtime's count of goroutines
// created covers its handlers.
func TestCallsRunOnKeptGoroutines(t *testing.T) {
	const calls = 200
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sess := testenv.Session(t)
	for _, tc := range []struct {
		name string
		opt  []server.Option
		kept bool
	}{
		{"default", nil, true},
		{"set", []server.Option{server.WithStreamWorkers(8)}, true},
		{"none", []server.Option{server.WithStreamWorkers(0)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc := testenv.Serve(t, sess, tc.opt...)
			h := healthpb.NewHealthClient(cc)
			check := func() {
				if _, err := h.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
					t.Fatal(err)
				}
			}
			check() // connected, and every worker started
			before := goroutinesCreated(t)
			for range calls {
				check()
			}
			created := goroutinesCreated(t) - before
			t.Logf("%d calls created %d goroutines", calls, created)
			if tc.kept && created > calls/4 {
				t.Errorf("%d calls created %d goroutines with workers, want few", calls, created)
			}
			if !tc.kept && created < calls {
				t.Errorf("%d calls created %d goroutines with no workers, want one a call at least", calls, created)
			}
		})
	}
}
