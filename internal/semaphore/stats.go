package semaphore

import "sync/atomic"

// Stats are the counts of the AcquireSemaphore calls running here, for monitoring.
type Stats struct {
	// Waiting and Holding are the Acquire calls queued, and holding
	// (in jeopardy included), now. Holds taken by TryAcquire, which
	// no call follows, are not counted.
	Waiting, Holding int
	// JeopardyNotices counts the Jeopardy reports sent: a holder told
	// that this replica lost ZooKeeper and its hold may end.
	JeopardyNotices int64
}

// counters are the counts behind Stats.
type counters struct {
	waiting, holding, jeopardy atomic.Int64
}

// Stats returns the counts now.
func (s *Semaphores) Stats() Stats {
	c := &s.counters
	return Stats{Waiting: int(c.waiting.Load()), Holding: int(c.holding.Load()), JeopardyNotices: c.jeopardy.Load()}
}

// counted wraps an Acquire's report to keep the counts; done ends the
// call's share of them. Reports of one call come one at a time.
func (s *Semaphores) counted(report func(Update) error) (counting func(Update) error, done func()) {
	c := &s.counters
	var in *atomic.Int64 // the gauge this call counts in: waiting, holding or none
	move := func(to *atomic.Int64) {
		if to == in {
			return
		}
		if in != nil {
			in.Add(-1)
		}
		if to != nil {
			to.Add(1)
		}
		in = to
	}
	return func(u Update) error {
			switch u.Status {
			case Queued:
				move(&c.waiting)
			case Held, Jeopardy:
				move(&c.holding)
			default:
				move(nil)
			}
			if u.Status == Jeopardy {
				c.jeopardy.Add(1)
			}
			return report(u)
		}, func() {
			move(nil)
		}
}
