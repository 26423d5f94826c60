package lease

import "sync/atomic"

// Stats are a Manager's counts, for monitoring: gauges of what it holds now
// and counters of what happened since it started.
type Stats struct {
	// Owned is the number of leases this replica owns; HandingOff of them
	// are being handed to another replica now.
	Owned, HandingOff int
	// Granted and Adopted count leases that became this replica's: granted
	// here, or taken over (a lease whose owner vanished, or one a client
	// kept alive here after a hand-off).
	Granted, Adopted int64
	// Expired, Revoked and HandedOff count leases that stopped being this
	// replica's: their TTL lapsed, Revoke ended them, or they were handed
	// to another replica (Drain, Handoff).
	Expired, Revoked, HandedOff int64
	// KeepAlivesServed counts renewals of leases this replica owns (its
	// own clients' and those other replicas forwarded); KeepAlivesForwarded
	// those it sent on to the owner of a lease.
	KeepAlivesServed, KeepAlivesForwarded int64
	// LimitRefused counts grants and adoptions refused because the holder
	// was at its lease limit (LimitError).
	LimitRefused int64
}

// counters are the event counts behind Stats.
type counters struct {
	granted, adopted, expired, revoked, handedOff atomic.Int64
	served, forwarded, limitRefused               atomic.Int64
}

// Stats returns the Manager's counts now.
func (m *Manager) Stats() Stats {
	c := &m.counters
	s := Stats{
		Granted: c.granted.Load(), Adopted: c.adopted.Load(),
		Expired: c.expired.Load(), Revoked: c.revoked.Load(), HandedOff: c.handedOff.Load(),
		KeepAlivesServed: c.served.Load(), KeepAlivesForwarded: c.forwarded.Load(),
		LimitRefused: c.limitRefused.Load(),
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s.Owned = len(m.leases)
	for _, e := range m.leases {
		if e.frozen {
			s.HandingOff++
		}
	}
	return s
}
