package client_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/client"
	"github.com/zkcoord/zkcoord/internal/testing/testenv"
)

// TestRollingRestart: a client of three replicas keeps its lease, its
// member, its leadership and its lock's hold (same fencing tokens, contexts
// never cancelled) while the replicas are drained one after the other; its
// watch never sees the member leave.
func TestRollingRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	root := fmt.Sprintf("/rolling-%d", time.Now().UnixNano())
	var reps []*testenv.Replica
	var addrs []string
	for _, id := range []string{"a", "b", "c"} {
		r := testenv.StartReplica(t, root, id)
		reps = append(reps, r)
		addrs = append(addrs, r.Addr)
	}
	c, err := client.New(ctx, strings.Join(addrs, ","), client.WithBackoff(10*time.Millisecond, 200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := c.NewSession(ctx, client.WithTTL(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	if _, err := s.Register(ctx, "svc", "m1", "10.0.0.1:80"); err != nil {
		t.Fatal(err)
	}
	lead, err := s.Campaign(ctx, "boss", "m1")
	if err != nil {
		t.Fatal(err)
	}
	token := lead.Token()
	mutex, err := s.Lock(ctx, "mutex")
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	states := c.WatchGroup(wctx, "svc")
	first := <-states
	if _, ok := first.Members["m1"]; !ok || first.Err != nil {
		t.Fatalf("first state = %+v", first)
	}
	missing := make(chan string, 1)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for st := range states {
			if _, ok := st.Members["m1"]; !ok && st.Err == nil {
				select {
				case missing <- fmt.Sprintf("revision %d (resync %v): m1 missing", st.Revision, st.Resync):
				default:
				}
			}
		}
	}()

	for i, r := range reps[:2] {
		r.Stop() // drain, as on SIGTERM
		// The lease lives on: keepalives and calls go to the others.
		deadline := time.Now().Add(4 * time.Second) // beyond the 3s TTL
		for time.Now().Before(deadline) {
			ms, _, err := c.Lookup(ctx, "svc", client.Linearizable())
			if err != nil {
				t.Fatalf("after draining replica %d: Lookup: %v", i, err)
			}
			if len(ms) != 1 {
				t.Fatalf("after draining replica %d: members %v", i, ms)
			}
			select {
			case <-lead.Context().Done():
				t.Fatalf("leadership ended after draining replica %d: %v", i, context.Cause(lead.Context()))
			case <-mutex.Context().Done():
				t.Fatalf("lock's hold ended after draining replica %d: %v", i, context.Cause(mutex.Context()))
			case <-time.After(200 * time.Millisecond):
			}
		}
		t.Logf("replica %d drained: member kept, leadership kept, lock kept", i)
	}
	if got := lead.Token(); got != token {
		t.Fatalf("token %d after the restarts, was %d", got, token)
	}
	l, _, err := c.Leader(ctx, "boss")
	if err != nil || l.GetFencingToken() != token {
		t.Fatalf("Leader = %v, %v; want token %d", l, err, token)
	}
	if current, _, err := c.CheckSequencer(ctx, mutex.Sequencer()); err != nil || !current {
		t.Fatalf("the lock's token after the restarts: current %v, %v", current, err)
	}
	wcancel()
	<-watched
	select {
	case m := <-missing:
		t.Fatal(m)
	default:
	}
}
