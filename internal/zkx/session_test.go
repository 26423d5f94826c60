package zkx_test

import (
	"context"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

func TestMain(m *testing.M) { zktest.Main(m) }

// waitState waits for the session to reach want, following its changes.
func waitState(t *testing.T, s *zkx.Session, want zkx.State, within time.Duration) zkx.Status {
	t.Helper()
	deadline := time.After(within)
	for {
		st, ch := s.Watch()
		if st.State == want {
			return st
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("session not %v within %v (now %+v)", want, within, st)
		}
	}
}

// TestSessionStates: a session through a proxy reports the disconnection,
// the reconnection to the same session, and after a cut longer than the
// session timeout the expiry and the new session go-zookeeper opens
// silently (a new epoch), so the recipes can rebuild.
func TestSessionStates(t *testing.T) {
	px := zktest.NewProxy(t, zktest.Addr(t))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const timeout = 2 * time.Second // a short cut must reconnect within it, even on a loaded machine
	s, err := zkx.Dial(ctx, px.Addr()+"/chroot", zkx.WithSessionTimeout(timeout), zkx.WithLogger(zktest.Logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	first := s.Status()
	if first.State != zkx.StateConnected || first.Epoch != 1 || first.SessionID == 0 || s.Chroot() != "/chroot" {
		t.Fatalf("after Dial: %+v", first)
	}

	link := s.Link()
	px.Cut()
	waitState(t, s, zkx.StateDisconnected, 5*time.Second)
	px.Restore()
	back := waitState(t, s, zkx.StateConnected, 5*time.Second)
	if back.SessionID != first.SessionID || back.Epoch != 1 || back.Expirations != 0 {
		t.Fatalf("short cut changed the session: %+v -> %+v", first, back)
	}
	if s.Link() == link { // a reconnection to the same session must move it
		t.Fatalf("Link %d did not move across a reconnection", link)
	}

	px.Cut()
	waitState(t, s, zkx.StateDisconnected, 5*time.Second)
	// Outlive the session on the server's side: its expiry is only seen on
	// reconnection, so wait past the timeout by the clock.
	time.Sleep(3 * timeout)
	px.Restore()
	renewed := waitState(t, s, zkx.StateConnected, 10*time.Second)
	if renewed.SessionID == first.SessionID || renewed.Epoch != 2 || renewed.Expirations != 1 {
		t.Fatalf("after expiry: %+v (first %+v)", renewed, first)
	}
	if _, _, err := s.Conn().Exists("/"); err != nil {
		t.Fatalf("new session unusable: %v", err)
	}
	s.Close()
	if st := s.Status(); st.State != zkx.StateClosed {
		t.Fatalf("after Close: %+v", st)
	}
	if err := s.WaitConnected(ctx); err != zkx.ErrClosed {
		t.Fatalf("WaitConnected after Close: %v", err)
	}
}
