package memo

import "sync/atomic"

// QueueStats are the counts of a queue recipe's acquire calls (a lock's,
// a semaphore's) running on this replica, for monitoring.
type QueueStats struct {
	// Waiting and Holding are the acquire calls queued, and holding (in
	// jeopardy included), now. Holds taken by a try, which no call
	// follows, are not in them: they end with a release or with their
	// lease, maybe on another replica, so no gauge here could follow them.
	// TriesAcquired and TriesBusy count the tries instead, as they are
	// answered: acquired (a hold taken or found), or busy (none free).
	Waiting, Holding         int
	TriesAcquired, TriesBusy int64
	// JeopardyNotices counts the Jeopardy reports sent: a holder told
	// that this replica lost ZooKeeper and its hold may end.
	JeopardyNotices int64
}

// QueueCounters keep QueueStats. The zero value is ready to use.
type QueueCounters struct {
	waiting, holding, jeopardy atomic.Int64
	triesAcquired, triesBusy   atomic.Int64
}

// Tried counts one try answered: acquired, or busy.
func (c *QueueCounters) Tried(acquired bool) {
	if acquired {
		c.triesAcquired.Add(1)
	} else {
		c.triesBusy.Add(1)
	}
}

// Stats returns the counts now.
func (c *QueueCounters) Stats() QueueStats {
	return QueueStats{Waiting: int(c.waiting.Load()), Holding: int(c.holding.Load()), JeopardyNotices: c.jeopardy.Load(),
		TriesAcquired: c.triesAcquired.Load(), TriesBusy: c.triesBusy.Load()}
}

// Call is one acquire call's share of the counts: it counts in one gauge
// (waiting, holding) or none. A call's reports come one at a time, so a
// Call is not safe for concurrent use.
type Call struct {
	c  *QueueCounters
	in *atomic.Int64
}

// Call starts counting one acquire call, in no gauge yet.
func (c *QueueCounters) Call() *Call { return &Call{c: c} }

func (k *Call) move(to *atomic.Int64) {
	if to == k.in {
		return
	}
	if k.in != nil {
		k.in.Add(-1)
	}
	if to != nil {
		to.Add(1)
	}
	k.in = to
}

// Waiting counts the call as queued.
func (k *Call) Waiting() { k.move(&k.c.waiting) }

// Holding counts the call as holding.
func (k *Call) Holding() { k.move(&k.c.holding) }

// Jeopardy counts the call as holding, and one jeopardy notice sent.
func (k *Call) Jeopardy() {
	k.move(&k.c.holding)
	k.c.jeopardy.Add(1)
}

// Done ends the call's share: it counts in no gauge.
func (k *Call) Done() { k.move(nil) }
