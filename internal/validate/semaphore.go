package validate

import zkcoordv1 "github.com/zkcoord/zkcoord/gen/zkcoord/v1"

// MaxPermits is the most permits (N) a semaphore may have: more holders
// than one semaphore's queue should carry at once (GetSemaphore lists them
// all).
const MaxPermits = 10000

// semaphore checks the requests of semaphore.proto: names as for
// elections, 1 to MaxPermits permits, values and leases as for Campaign;
// TryAcquireSemaphore needs a lease or a ttl, as JoinBarrier does.
func (v *violations) semaphore(msg any) {
	switch m := msg.(type) {
	case *zkcoordv1.AcquireSemaphoreRequest:
		v.name("semaphore", m.GetSemaphore(), true)
		v.permits("permits", m.GetPermits())
		v.value("value", m.GetValue())
		v.leaseID("lease_id", m.GetLeaseId(), false)
		v.ttl("ttl", m.GetTtl())
		v.leaseOrTTL(m.GetLeaseId(), m.GetTtl())
	case *zkcoordv1.TryAcquireSemaphoreRequest:
		v.name("semaphore", m.GetSemaphore(), true)
		v.permits("permits", m.GetPermits())
		v.value("value", m.GetValue())
		v.leaseID("lease_id", m.GetLeaseId(), false)
		v.ttl("ttl", m.GetTtl())
		if m.GetLeaseId() == "" && m.GetTtl() == nil {
			v.add("lease_id", "one of lease_id or ttl is required")
		}
		v.leaseOrTTL(m.GetLeaseId(), m.GetTtl())
	case *zkcoordv1.ReleaseSemaphoreRequest:
		v.name("semaphore", m.GetSemaphore(), true)
		v.leaseID("lease_id", m.GetLeaseId(), true)
	case *zkcoordv1.GetSemaphoreRequest:
		v.name("semaphore", m.GetSemaphore(), true)
	}
}

// permits checks a semaphore's N.
func (v *violations) permits(field string, n int32) {
	if n < 1 || n > MaxPermits {
		v.addf(field, "must be between 1 and %d, not %d", MaxPermits, n)
	}
}
