package client_test

import (
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/client"
	"github.com/zkcoord/zkcoord/internal/testing/testenv"
)

// TestWatchManyResumesAfterCut: WatchMany follows two groups over one
// stream; a bad group name is refused alone (its last state carries Err);
// after the connection is cut, both watches resume from their revisions on
// a new stream (no resync: the gateway still holds the changes), the
// change made meanwhile included.
func TestWatchManyResumesAfterCut(t *testing.T) {
	p := newProxy(t, testenv.Gateway(t))
	c, err := client.New(t.Context(), p.addr(), client.WithBackoff(10*time.Millisecond, 100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s := session(t, connect(t))
	ctx, g1, g2 := ctxT(t), name(t, "one"), name(t, "two")
	states := c.WatchMany(ctx, g1, "bad/name", g2)
	by := map[string][]client.GroupState{}
	next := func() client.GroupState {
		t.Helper()
		select {
		case st, ok := <-states:
			if !ok {
				t.Fatal("WatchMany's channel closed")
			}
			by[st.Group] = append(by[st.Group], st)
			return st
		case <-time.After(waitTimeout):
			t.Fatalf("no state; so far %v", by)
			panic("unreachable")
		}
	}
	for len(by[g1]) == 0 || len(by[g2]) == 0 || len(by["bad/name"]) == 0 {
		next()
	}
	if bad := by["bad/name"]; len(bad) != 1 || bad[0].Err == nil {
		t.Fatalf("bad/name: %v, want one state with Err", bad)
	}
	t.Logf("bad/name refused: %v", by["bad/name"][0].Err)
	if _, err := s.Register(ctx, g1, "a", "1"); err != nil {
		t.Fatal(err)
	}
	for st := next(); st.Group != g1 || st.Members["a"] == nil; st = next() {
	}
	p.cut()
	if _, err := s.Register(ctx, g2, "b", "1"); err != nil {
		t.Fatal(err)
	}
	st := next()
	for ; st.Group != g2 || st.Members["b"] == nil; st = next() {
	}
	if st.Resync {
		t.Errorf("g2 resumed with a resync, want the change itself: %v", st.Events)
	}
	if _, err := s.Register(ctx, g1, "c", "1"); err != nil {
		t.Fatal(err)
	}
	for st := next(); st.Group != g1 || st.Members["c"] == nil; st = next() {
		if st.Err != nil {
			t.Fatal(st.Err)
		}
	}
}
