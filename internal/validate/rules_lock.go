package validate

import (
	"strings"

	zkcoordv1 "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

// lockRules adds the violations of a lock.proto request to v, and reports
// false when msg is not one.
func lockRules(msg any, v *violations) bool {
	switch m := msg.(type) {
	case *zkcoordv1.AcquireLockRequest:
		v.name("lock", m.GetLock(), true)
		v.mode("mode", m.GetMode())
		v.leaseID("lease_id", m.GetLeaseId(), false)
		v.ttl("ttl", m.GetTtl())
		v.leaseOrTTL(m.GetLeaseId(), m.GetTtl())
		v.hold("resume", m.GetResume())
		if m.GetResume() != "" && m.GetLeaseId() == "" {
			v.add("resume", "needs lease_id: the lease that owns the hold")
		}
		if m.GetResume() != "" && m.GetReentrant() {
			v.add("reentrant", "conflicts with resume: a resume adds no hold")
		}
	case *zkcoordv1.TryAcquireLockRequest:
		v.name("lock", m.GetLock(), true)
		v.mode("mode", m.GetMode())
		v.leaseID("lease_id", m.GetLeaseId(), false)
		v.ttl("ttl", m.GetTtl())
		if m.GetLeaseId() == "" && m.GetTtl() == nil {
			v.add("lease_id", "one of lease_id or ttl is required")
		}
		v.leaseOrTTL(m.GetLeaseId(), m.GetTtl())
	case *zkcoordv1.ReleaseLockRequest:
		v.name("lock", m.GetLock(), true)
		v.leaseID("lease_id", m.GetLeaseId(), true)
		v.hold("hold", m.GetHold())
	case *zkcoordv1.GetLockRequest:
		v.name("lock", m.GetLock(), true)
	case *zkcoordv1.CheckSequencerRequest:
		v.name("lock", m.GetLock(), false)
		v.name("election", m.GetElection(), false)
		switch {
		case m.GetLock() == "" && m.GetElection() == "":
			v.add("lock", "one of lock or election is required")
		case m.GetLock() != "" && m.GetElection() != "":
			v.add("election", "conflicts with lock: set exactly one of lock or election")
		}
		if m.GetFencingToken() <= 0 {
			v.addf("fencing_token", "must be positive, not %d", m.GetFencingToken())
		}
	default:
		return false
	}
	return true
}

// mode checks a lock mode: a defined LockMode value.
func (v *violations) mode(field string, m zkcoordv1.LockMode) {
	if _, ok := zkcoordv1.LockMode_name[int32(m)]; !ok {
		v.addf(field, "must be a defined LockMode value, not %d", m)
	}
}

// hold checks a hold ID when it is set: 16 lowercase hex characters.
func (v *violations) hold(field, s string) {
	if s != "" && (len(s) != HoldIDLen || strings.Trim(s, "0123456789abcdef") != "") {
		v.add(field, descHold)
	}
}
