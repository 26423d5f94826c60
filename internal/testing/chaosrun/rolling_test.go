package chaosrun_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/client"
)

// TestRollingRestartUnderLoad drains and restarts every replica in turn, as
// a deployment does, while a client keeps a member registered and a
// leadership; its watch must never see the member leave, and its leadership
// must keep its term (same fencing token, context never cancelled).
func TestRollingRestartUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an ensemble and replica processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := startCluster(ctx, t)
	cl, err := client.New(ctx, c.Target(), client.WithBackoff(10*time.Millisecond, 200*time.Millisecond),
		// A lease lost and restored (a warning) shows in a failure's output.
		client.WithLogger(slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	s, err := cl.NewSession(ctx, client.WithTTL(6*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	// Load: other sessions registering and deregistering meanwhile.
	lctx, stopLoad := context.WithCancel(ctx)
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		for i := 0; lctx.Err() == nil; i++ {
			ls, err := cl.NewSession(lctx, client.WithTTL(6*time.Second))
			if err != nil {
				continue
			}
			_, _ = ls.Register(lctx, "svc", fmt.Sprintf("load-%d", i%5), "x")
			_ = ls.Close(context.Background())
		}
	}()
	if _, err := s.Register(ctx, "svc", "live", "10.0.0.1:80"); err != nil {
		t.Fatal(err)
	}
	lead, err := s.Campaign(ctx, "boss", "live")
	if err != nil {
		t.Fatal(err)
	}
	token := lead.Token()
	wctx, wcancel := context.WithCancel(ctx)
	left := make(chan string, 1)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for st := range cl.WatchGroup(wctx, "svc") {
			if st.Err != nil {
				continue
			}
			if _, ok := st.Members["live"]; !ok {
				select {
				case left <- fmt.Sprintf("revision %d (resync %v): live member missing", st.Revision, st.Resync):
				default:
				}
			}
		}
	}()
	for i, r := range c.Replicas() {
		start := time.Now()
		if err := r.Drain(ctx); err != nil {
			t.Fatalf("drain %s: %v", r.ID, err)
		}
		if err := r.Restart(ctx); err != nil {
			t.Fatalf("restart %s: %v", r.ID, err)
		}
		t.Logf("replica %d (%s) drained and restarted in %v", i, r.ID, time.Since(start).Round(time.Millisecond))
		// Stay a lease TTL on the new set of replicas.
		select {
		case <-lead.Context().Done():
			t.Fatalf("leadership ended after restarting %s: %v", r.ID, context.Cause(lead.Context()))
		case <-time.After(6 * time.Second):
		}
		ms, _, err := cl.Lookup(ctx, "svc", client.Member("live"), client.Linearizable())
		if err != nil || len(ms) != 1 {
			t.Fatalf("after restarting %s: Lookup = %v, %v", r.ID, ms, err)
		}
	}
	stopLoad()
	<-loadDone
	if got := lead.Token(); got != token {
		t.Fatalf("token %d after the rolling restart, was %d", got, token)
	}
	wcancel()
	<-watched
	select {
	case m := <-left:
		t.Fatal(m)
	default:
	}
}

// testLog writes the client's log lines to the test's log.
type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
