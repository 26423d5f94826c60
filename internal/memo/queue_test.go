package memo

import "testing"

func TestQueueCounters(t *testing.T) {
	var c QueueCounters
	a, b := c.Call(), c.Call()
	a.Waiting()
	b.Waiting()
	a.Holding()
	a.Holding() // no double count
	if s := c.Stats(); s.Waiting != 1 || s.Holding != 1 {
		t.Fatalf("one waiting, one holding: %+v", s)
	}
	a.Jeopardy()
	b.Done()
	if s := c.Stats(); s.Waiting != 0 || s.Holding != 1 || s.JeopardyNotices != 1 {
		t.Fatalf("a in jeopardy, b done: %+v", s)
	}
	a.Done()
	a.Done()
	if s := c.Stats(); s.Waiting != 0 || s.Holding != 0 {
		t.Fatalf("both done: %+v", s)
	}
}

func TestQueueCountersTries(t *testing.T) {
	var c QueueCounters
	c.Tried(true)
	c.Tried(false)
	c.Tried(false)
	if s := c.Stats(); s.TriesAcquired != 1 || s.TriesBusy != 2 || s.Holding != 0 {
		t.Fatalf("one try acquired, two busy, no gauge moved: %+v", s)
	}
}
