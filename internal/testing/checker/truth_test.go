package checker

import (
	"fmt"
	"maps"
	"strings"
	"testing"
)

// put is a journal entry putting member=value under lease at revision rev,
// committed at ms.
func put(rev int64, ms int, member, value, lease string) Change {
	return Change{Rev: rev, Time: at(ms), Member: member, Value: value, Lease: lease}
}

// del is a journal entry deleting member at revision rev, committed at ms.
func del(rev int64, ms int, member string) Change {
	return Change{Rev: rev, Time: at(ms), Member: member, Del: true}
}

// truthOf builds the truth of group g from changes (sequence numbers two
// apart, as ZooKeeper's counter also counts deletions), complete to known
// as of ms.
func truthOf(known int64, ms int, changes ...Change) *Truth {
	t := NewTruth("g")
	for i, c := range changes {
		c.Seq = int64(2 * i)
		t.Add(c)
	}
	t.Through(known, at(ms))
	return t
}

func TestTruthFollowsTheJournal(t *testing.T) {
	tr := NewTruth("g")
	next, ok := tr.Next([]int64{4, 0, 2}) // any order; gaps in the numbers are fine
	if !ok || fmt.Sprint(next) != "[0 2 4]" {
		t.Fatalf("first listing: %v %v", next, ok)
	}
	for i, s := range next {
		tr.Add(Change{Seq: s, Rev: int64(10 + i), Member: "a", Value: fmt.Sprint(i)})
	}
	tr.Through(12, at(0))
	// A trim removed 0 and 2; 4, the last read, is still listed.
	if next, ok = tr.Next([]int64{4, 7, 9}); !ok || fmt.Sprint(next) != "[7 9]" {
		t.Fatalf("second listing: %v %v", next, ok)
	}
	if !tr.Complete() || tr.Known != 12 {
		t.Fatalf("complete=%v known=%d", tr.Complete(), tr.Known)
	}
}

// TestTruthContinuity is the mutation test of the recorder's continuity
// check: listings that cannot prove every entry was read make the truth
// incomplete, and it stays so.
func TestTruthContinuity(t *testing.T) {
	for _, tc := range []struct {
		name   string
		read   []int64 // entries read before
		listed []int64
		want   string
	}{
		{"the last entry read was trimmed", []int64{0, 2, 4}, []int64{6, 8}, "entry 4, the last read, is no longer listed"},
		{"first listing already trimmed", nil, []int64{1000, 1002}, "starts at entry 1000, not 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewTruth("g")
			for i, s := range tc.read {
				tr.Add(Change{Seq: s, Rev: int64(10 + i), Member: "a"})
			}
			tr.Through(20, at(0))
			if next, ok := tr.Next(tc.listed); ok || next != nil {
				t.Fatalf("Next = %v, %v; want a gap", next, ok)
			}
			if tr.Complete() || !strings.Contains(tr.Gap, tc.want) {
				t.Fatalf("gap %q, want %q", tr.Gap, tc.want)
			}
			// Incomplete for good: later listings, entries and revisions
			// are ignored, and revisions past the gap are unknown.
			if _, ok := tr.Next(append(tc.read, tc.listed...)); ok {
				t.Error("Next after a gap succeeded")
			}
			n := len(tr.Changes)
			tr.Add(Change{Seq: 9999, Rev: 99, Member: "z"})
			tr.Through(99, at(1000))
			if len(tr.Changes) != n || tr.Known != 20 {
				t.Errorf("changes %d known %d after the gap", len(tr.Changes), tr.Known)
			}
			if _, ok := tr.At(21); ok {
				t.Error("At past the gap known")
			}
		})
	}
	tr := NewTruth("g")
	tr.Add(Change{Seq: 4, Rev: 10})
	tr.Add(Change{Seq: 2, Rev: 11})
	if tr.Complete() {
		t.Error("an entry out of sequence order kept the truth complete")
	}
}

func TestTruthAt(t *testing.T) {
	var changes []Change
	want := map[int64]map[string]string{0: {}}
	state := map[string]string{}
	// 200 revisions (past several index marks); every fifth a transaction
	// of two entries.
	for rev := int64(1); rev <= 200; rev++ {
		m := fmt.Sprintf("m%d", rev%7)
		if _, ok := state[m]; ok && rev%3 == 0 {
			changes = append(changes, del(rev, 0, m))
			delete(state, m)
		} else {
			changes = append(changes, put(rev, 0, m, fmt.Sprint(rev), "L"))
			state[m] = fmt.Sprint(rev)
		}
		if rev%5 == 0 {
			changes = append(changes, put(rev, 0, "t", fmt.Sprint(rev), ""))
			state["t"] = fmt.Sprint(rev)
		}
		want[rev] = maps.Clone(state)
	}
	tr := truthOf(210, 0, changes...)
	for rev := int64(0); rev <= 200; rev++ {
		if got, ok := tr.At(rev); !ok || !maps.Equal(got, want[rev]) {
			t.Fatalf("At(%d) = %v, want %v", rev, got, want[rev])
		}
	}
	if got, ok := tr.At(210); !ok || !maps.Equal(got, want[200]) {
		t.Errorf("At(210) = %v, want the last state", got)
	}
	if _, ok := tr.At(211); ok {
		t.Error("At past Known known")
	}
	if got := tr.RevsIn(3, 6); fmt.Sprint(got) != "[4 5 6]" {
		t.Errorf("RevsIn(3, 6) = %v", got)
	}
	if got := tr.describeRev(5); got != `put m5="5", put t="5"` {
		t.Errorf("describeRev(5) = %q", got)
	}
}

func TestCheckTruth(t *testing.T) {
	tr := truthOf(30, 0, put(10, 0, "a", "1", "L"), put(20, 0, "b", "1", "L"), del(30, 0, "a"))
	assertResult(t, CheckTruth(tr, map[string]string{"b": "1"}), 1, 0, 0)
	// The directory still holds a, which the journal says was deleted.
	r := CheckTruth(tr, map[string]string{"b": "1", "a": "1"})
	assertResult(t, r, 1, 1, 0)
	if len(r.Examples) == 0 || !strings.Contains(r.Examples[0], "missing a") {
		t.Errorf("examples %q", r.Examples)
	}
	assertResult(t, CheckTruth(tr, nil), 0, 0, 1)
	tr.Lose("entry 4, the last read, is no longer listed")
	assertResult(t, CheckTruth(tr, map[string]string{"b": "1"}), 0, 0, 1)
}
