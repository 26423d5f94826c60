package registry

import (
	"sync/atomic"
	"time"
)

// LagBounds are the upper bounds of the journal-lag histogram's buckets:
// from a change applied within a millisecond of its commit to one a cache
// saw only after a reconnection.
var LagBounds = [...]time.Duration{
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond,
	25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond,
	500 * time.Millisecond, time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

// Lag is a histogram of journal lag: for each change a cache applied from
// its group's journal while following it, the time from the change's
// commit (the journal entry's ctime, ZooKeeper's clock) to the moment the
// cache applied it (this gateway's clock). Changes read in a snapshot (a
// cache's first load, or a reload after the journal was trimmed past it)
// are not counted: their age says when they were written, not how far the
// cache lags.
type Lag struct {
	// Counts[i] is the number of changes whose lag was at most LagBounds[i]
	// (cumulative, as Prometheus's buckets); Count the number of changes,
	// Sum their total lag.
	Counts []uint64
	Count  uint64
	Sum    time.Duration
}

// lagHist accumulates Lag without a lock.
type lagHist struct {
	buckets [len(LagBounds)]atomic.Uint64 // not cumulative
	count   atomic.Uint64
	sumNs   atomic.Int64
}

// observe records one change committed at committed and applied at now.
// A negative lag (the clocks disagree) counts as zero.
func (h *lagHist) observe(committed, now time.Time) {
	d := max(now.Sub(committed), 0)
	for i, b := range LagBounds {
		if d <= b {
			h.buckets[i].Add(1)
			break
		}
	}
	h.count.Add(1)
	h.sumNs.Add(int64(d))
}

func (h *lagHist) snapshot() Lag {
	l := Lag{Counts: make([]uint64, len(LagBounds)), Count: h.count.Load(), Sum: time.Duration(h.sumNs.Load())}
	var run uint64
	for i := range LagBounds {
		run += h.buckets[i].Load()
		l.Counts[i] = run
	}
	return l
}
