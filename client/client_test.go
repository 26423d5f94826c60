package client

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestCloseEndsStreamsAndWaits(t *testing.T) {
	c, f := newFake(t)
	watch := c.WatchGroup(t.Context(), "g")
	observe := c.Observe(t.Context(), "e")
	w, o := next(t, f.watches), next(t, f.observes)
	s, err := c.NewSession(t.Context())
	if err != nil {
		t.Fatal(err)
	}

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// Close has waited for the goroutines: everything has ended already.
	select {
	case <-s.Done():
	default:
		t.Error("session running after Close")
	}
	select {
	case _, ok := <-watch:
		if ok {
			t.Error("watch sent after Close")
		}
	default:
		t.Error("watch channel open after Close")
	}
	select {
	case _, ok := <-observe:
		if ok {
			t.Error("observation sent after Close")
		}
	default:
		t.Error("observe channel open after Close")
	}
	w.wait(t) // the gateway saw the streams go
	o.wait(t)
	if st := <-c.WatchGroup(t.Context(), "g"); !errors.Is(st.Err, ErrClosed) {
		t.Errorf("WatchGroup after Close: %v, want ErrClosed", st.Err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestNewWithBlock(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	// Nothing listens on port 1.
	if _, err := New(ctx, "127.0.0.1:1", WithBlock()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("New = %v, want DeadlineExceeded", err)
	}
}
