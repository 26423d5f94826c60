package zktest

import (
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/zkx"
)

// WaitSession waits, up to 10 s, until s is in state want.
func WaitSession(t testing.TB, s *zkx.Session, want zkx.State) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		st, ch := s.Watch()
		if st.State == want {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("session not %v (now %+v)", want, st)
		}
	}
}
