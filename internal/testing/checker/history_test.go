package checker

import (
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// t0 is the start of every synthetic history.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// at returns t0 plus ms milliseconds.
func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// history records evs in order.
func history(evs ...Event) *History {
	h := NewHistory()
	for _, e := range evs {
		h.Record(e)
	}
	return h
}

// assertResult checks a result's counts.
func assertResult(t *testing.T, r Result, checks, violations, unchecked int) {
	t.Helper()
	if r.Checks != checks || r.Violations != violations || r.Unchecked != unchecked {
		t.Errorf("%s: checks=%d violations=%d unchecked=%d, want %d/%d/%d; examples:\n%q",
			r.Name, r.Checks, r.Violations, r.Unchecked, checks, violations, unchecked, r.Examples)
	}
}

func TestHistoryRecordConcurrent(t *testing.T) {
	h := NewHistory()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				h.Record(Event{Kind: KindFault, Time: at(i % 10), Client: "c"})
			}
		}()
	}
	wg.Wait()
	evs := h.Events()
	if len(evs) != 800 || h.Len() != 800 {
		t.Fatalf("got %d events, Len %d; want 800", len(evs), h.Len())
	}
	seen := map[uint64]bool{}
	for i, e := range evs {
		if e.Seq == 0 || seen[e.Seq] {
			t.Fatalf("event %d: sequence %d zero or repeated", i, e.Seq)
		}
		seen[e.Seq] = true
		if i > 0 {
			p := evs[i-1]
			if e.Time.Before(p.Time) || e.Time.Equal(p.Time) && e.Seq < p.Seq {
				t.Fatalf("events %d and %d out of order: %v#%d then %v#%d", i-1, i, p.Time, p.Seq, e.Time, e.Seq)
			}
		}
	}
}

func TestHistoryStampsTime(t *testing.T) {
	before := time.Now()
	h := history(Event{Kind: KindFault, Value: "kill replica-1"}, Event{Kind: KindFault, Time: t0})
	evs := h.Events()
	if !evs[0].Time.Equal(t0) || evs[0].Seq != 2 {
		t.Errorf("first event %v#%d, want t0#2", evs[0].Time, evs[0].Seq)
	}
	if evs[1].Time.Before(before) || evs[1].Value != "kill replica-1" {
		t.Errorf("second event %+v: time not stamped", evs[1])
	}
}

func TestEventOutcome(t *testing.T) {
	for _, tc := range []struct {
		err                   string
		ok, definite, unknown bool
	}{
		{"", true, false, false},
		{"OK", true, false, false},
		{ErrAlreadyExists, false, true, false},
		{ErrNotFound, false, true, false},
		{ErrPermissionDenied, false, true, false},
		{"Unavailable", false, false, true},
		{"DeadlineExceeded", false, false, true},
		{"Aborted", false, false, true},
	} {
		e := Event{Err: tc.err}
		if e.ok() != tc.ok || e.definiteFailure() != tc.definite || e.unknown() != tc.unknown {
			t.Errorf("Err %q: ok=%v definite=%v unknown=%v", tc.err, e.ok(), e.definiteFailure(), e.unknown())
		}
	}
}
