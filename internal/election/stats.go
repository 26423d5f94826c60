package election

import "sync/atomic"

// Stats are an Elections' counts, for monitoring.
type Stats struct {
	// Candidates is the number of campaigns running here; Leaders those
	// of them leading now (in jeopardy included).
	Candidates, Leaders int
	// Terms counts the terms begun by campaigns running here: each time a
	// candidacy followed here became leader.
	Terms int64
	// JeopardyNotices counts the Jeopardy reports sent to campaigns: a
	// leader told that this replica lost ZooKeeper and its term may end.
	JeopardyNotices int64
	// UnreadTakeovers counts the terms begun here with no read: the
	// candidate's watch on itself proved it still there (provenFirst).
	UnreadTakeovers int64
}

// counters are the counts behind Stats.
type counters struct {
	candidates, leaders atomic.Int64
	terms, jeopardy     atomic.Int64
	unread              atomic.Int64
}

// Stats returns the counts now.
func (e *Elections) Stats() Stats {
	c := &e.counters
	return Stats{Candidates: int(c.candidates.Load()), Leaders: int(c.leaders.Load()),
		Terms: c.terms.Load(), JeopardyNotices: c.jeopardy.Load(), UnreadTakeovers: c.unread.Load()}
}

// counted wraps a campaign's report to keep the counts; done ends the
// campaign's share of them. Reports of one campaign come one at a time.
func (e *Elections) counted(report func(Update) error) (counting func(Update) error, done func()) {
	c := &e.counters
	c.candidates.Add(1)
	leading := false
	lead := func(now bool) {
		switch {
		case now && !leading:
			c.leaders.Add(1)
			c.terms.Add(1)
		case !now && leading:
			c.leaders.Add(-1)
		}
		leading = now
	}
	return func(u Update) error {
			lead(u.Status == Elected || u.Status == Jeopardy)
			if u.Status == Jeopardy {
				c.jeopardy.Add(1)
			}
			return report(u)
		}, func() {
			lead(false)
			c.candidates.Add(-1)
		}
}
