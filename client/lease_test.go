package client

import (
	"errors"
	"testing"
)

func TestSessionKeepsLeaseAliveAndRevokesOnClose(t *testing.T) {
	for _, tc := range []struct {
		name     string
		noStream bool
	}{
		{"stream", false},
		{"unary fallback", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, f := newFake(t)
			f.noStream = tc.noStream
			s, err := c.NewSession(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			lease := s.Lease()
			f.waitFor(t, "three keepalives", func() bool { return f.leases[lease] >= 3 })
			if err := s.Close(t.Context()); err != nil {
				t.Fatal(err)
			}
			select {
			case <-s.Done():
			default:
				t.Fatal("Done not closed after Close")
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if _, ok := f.leases[lease]; ok || len(f.revoked) != 1 || f.revoked[0] != lease {
				t.Fatalf("lease %s not revoked (revoked: %v)", lease, f.revoked)
			}
		})
	}
}

func TestSessionRestoresLostLease(t *testing.T) {
	c, f := newFake(t)
	type restore struct {
		lease string
		err   error
	}
	restored := make(chan restore, 1)
	s, err := c.NewSession(t.Context(), WithOnRestore(func(lease string, err error) { restored <- restore{lease, err} }))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(t.Context())
	for _, id := range []string{"a", "b", "gone", "taken"} {
		if _, err := s.Register(t.Context(), "g", id, "v-"+id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Register(t.Context(), "g", "a", "v-a2"); err != nil { // an update
		t.Fatal(err)
	}
	if err := s.Deregister(t.Context(), "g", "gone"); err != nil {
		t.Fatal(err)
	}
	lost, old := s.Lost(), s.Lease()

	// The lease expires, and another owner takes "taken" before the session
	// notices.
	f.expire(old, func() { f.members["g/taken"] = &fakeMember{value: "theirs"} })

	select {
	case <-lost:
	case <-s.Done():
		t.Fatal("session ended instead of restoring")
	}
	r := next(t, restored)
	if r.lease == old || r.lease != s.Lease() {
		t.Fatalf("restored lease %q, old %q, current %q", r.lease, old, s.Lease())
	}
	if !errors.Is(r.err, ErrAlreadyExists) {
		t.Fatalf("restore error = %v, want ErrAlreadyExists for the taken member", r.err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, want := range map[string]fakeMember{"a": {"v-a2", r.lease}, "b": {"v-b", r.lease}, "taken": {"theirs", ""}} {
		if got := f.member("g", id); got == nil || *got != want {
			t.Errorf("member %s = %v, want %v", id, got, want)
		}
	}
	if f.member("g", "gone") != nil {
		t.Error("deregistered member came back")
	}
	select {
	case <-s.Lost():
		t.Error("new lease's Lost channel closed")
	default:
	}
}

func TestSessionClosedByClient(t *testing.T) {
	c, _ := newFake(t)
	s, err := c.NewSession(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	<-s.Done()
	if _, err := s.Register(t.Context(), "g", "a", "v"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Register after client Close = %v, want ErrClosed", err)
	}
	if _, err := c.NewSession(t.Context()); err == nil {
		t.Fatal("NewSession after Close succeeded")
	}
}
