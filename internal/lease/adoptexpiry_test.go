package lease

import (
	"testing"
	"time"
)

// TestAdoptExpiry: what an adoption keeps and what its record gets, by who
// adopts. A sweep keeps the recorded bound and records nothing past it; a
// client's call that moves the lease without renewing it keeps the recorded
// expiry and records a horizon past it (a keepalive then needs no write); a
// client's keepalive starts the TTL again.
func TestAdoptExpiry(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	ttl, h := 6*time.Second, 2*time.Second
	rec := record{TTLMillis: ttl.Milliseconds(), Expires: now.Add(3 * time.Second)}
	for _, tc := range []struct {
		name            string
		client, renew   bool
		expires, record time.Duration // from now
	}{
		{name: "sweep", expires: 3 * time.Second, record: 3 * time.Second},
		{name: "a client's use", client: true, expires: 3 * time.Second, record: 3*time.Second + h},
		{name: "a client's renewal", client: true, renew: true, expires: ttl, record: ttl + h},
	} {
		e, r := adoptExpiry(rec, now, tc.client, tc.renew, h)
		if !e.Equal(now.Add(tc.expires)) || !r.Equal(now.Add(tc.record)) {
			t.Errorf("%s: expires in %v, record horizon in %v; want %v and %v", tc.name, e.Sub(now), r.Sub(now), tc.expires, tc.record)
		}
	}
}
