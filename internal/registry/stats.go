package registry

import "sync/atomic"

// Stats are a Registry's counts, for monitoring.
type Stats struct {
	// Groups is the number of groups cached (and watched) here; Members
	// the members those caches hold; Watchers the watches open on them
	// (WatchGroup streams, Watch watches, AwaitGroup barriers).
	Groups, Members, Watchers int
	// Resyncs counts watches that asked to resume from a revision the
	// cache no longer had, and started again from a snapshot.
	Resyncs int64
	// SlowWatcherCuts counts watches ended with ErrSlowWatcher.
	SlowWatcherCuts int64
	// CatchUps counts linearizable reads' catch-ups (one per barrier
	// write, shared by concurrent reads), and CatchUpLists those that had
	// to list the journal: the cache's watch had fired, or its connection
	// changed, since the cache was last current.
	CatchUps, CatchUpLists int64
	// JournalLag is how long after their commit the changes this
	// Registry's caches followed were applied (Lag).
	JournalLag Lag
}

// counters are the event counts behind Stats.
type counters struct {
	resyncs, slowCuts      atomic.Int64
	catchUps, catchUpLists atomic.Int64
	lag                    lagHist
}

// Stats returns the Registry's counts now. It visits every cache, each
// under its own lock.
func (r *Registry) Stats() Stats {
	s := Stats{Resyncs: r.counters.resyncs.Load(), SlowWatcherCuts: r.counters.slowCuts.Load(),
		CatchUps: r.counters.catchUps.Load(), CatchUpLists: r.counters.catchUpLists.Load(),
		JournalLag: r.counters.lag.snapshot()}
	r.mu.Lock()
	gs := make([]*group, 0, len(r.groups))
	for _, g := range r.groups {
		gs = append(gs, g)
	}
	r.mu.Unlock()
	s.Groups = len(gs)
	for _, g := range gs {
		g.mu.Lock()
		s.Members += g.members.Len()
		s.Watchers += len(g.subs)
		g.mu.Unlock()
	}
	return s
}
