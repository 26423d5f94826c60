package checker

import (
	"fmt"
	"maps"
	"sort"
	"strings"
	"time"
)

// Change is one entry of a group's journal (<root>/groups/<g>/log/e-<seq>):
// a member put (joined or updated) or deleted.
type Change struct {
	Seq int64 `json:"seq"`
	// Rev is the entry's czxid: the zxid of the transaction that wrote it,
	// shared by every entry that transaction wrote.
	Rev int64 `json:"rev"`
	// Time is the entry's ctime: when the transaction was committed, on
	// ZooKeeper's clock (milliseconds).
	Time   time.Time `json:"time"`
	Member string    `json:"member"`
	Del    bool      `json:"del,omitempty"`
	Value  string    `json:"value,omitempty"` // a put's value
	Lease  string    `json:"lease,omitempty"` // a put's owning lease ("" persistent)
}

// Truth is the ground truth of one group: every change of its members, in
// order, as a recorder with a ZooKeeper session of its own read them from
// the group's journal, independently of the gateway's code. The truth at
// revision R is the replay of the changes with Rev <= R.
//
// A recorder follows the journal with Next, Add and Through, and calls Lose
// when it cannot prove that it read every entry: the truth is then complete
// only up to Known, and checks of later revisions count as unchecked.
type Truth struct {
	Group   string
	Changes []Change
	// Known is the revision up to which Changes is complete, KnownAt the
	// time (recorder's clock) up to which it is: a member the truth shows
	// at Known was present at KnownAt.
	Known   int64
	KnownAt time.Time
	// Gap says why the truth stopped being complete, "" while it is.
	Gap string

	idx *truthIndex // built on first use, dropped by Add
}

// NewTruth returns the truth of a group whose journal has not been read.
func NewTruth(group string) *Truth { return &Truth{Group: group} }

// Complete reports whether the truth has no gap.
func (t *Truth) Complete() bool { return t.Gap == "" }

// lastSeq is the sequence number of the last entry read, -1 when none.
func (t *Truth) lastSeq() int64 {
	if len(t.Changes) == 0 {
		return -1
	}
	return t.Changes[len(t.Changes)-1].Seq
}

// Next takes a listing of the journal (its entries' sequence numbers, in
// any order) and returns the entries to read next, in order. It proves
// continuity first: the last entry read is still listed (a trim removes the
// oldest entries, so none after it has gone), or, before any was read, the
// listing is empty or starts at sequence 0, the journal's first entry ever.
// Sequence numbers need not be contiguous: ZooKeeper's counter also counts
// deletions. When continuity fails, Next marks the truth incomplete and
// returns false, as it does once the truth is incomplete.
func (t *Truth) Next(seqs []int64) ([]int64, bool) {
	if !t.Complete() {
		return nil, false
	}
	sorted := append([]int64(nil), seqs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	last := t.lastSeq()
	i := sort.Search(len(sorted), func(i int) bool { return sorted[i] >= last })
	switch {
	case last < 0 && len(sorted) > 0 && sorted[0] != 0:
		t.Lose(fmt.Sprintf("the first listing starts at entry %d, not 0: entries were trimmed before they were read", sorted[0]))
		return nil, false
	case last >= 0 && (i == len(sorted) || sorted[i] != last):
		t.Lose(fmt.Sprintf("entry %d, the last read, is no longer listed: entries may have been trimmed unread", last))
		return nil, false
	case last >= 0:
		i++
	}
	return sorted[i:], true
}

// Add appends an entry read after Next, in sequence order. An entry out of
// sequence or revision order marks the truth incomplete.
func (t *Truth) Add(c Change) {
	if !t.Complete() {
		return
	}
	if n := len(t.Changes); n > 0 && (c.Seq <= t.Changes[n-1].Seq || c.Rev < t.Changes[n-1].Rev) {
		t.Lose(fmt.Sprintf("entry %d (revision %d) read after entry %d (revision %d)", c.Seq, c.Rev, t.Changes[n-1].Seq, t.Changes[n-1].Rev))
		return
	}
	t.Changes = append(t.Changes, c)
	t.idx = nil
}

// Lose marks the truth incomplete from now on, saying why.
func (t *Truth) Lose(why string) {
	if t.Complete() {
		t.Gap = why
	}
}

// Through records that every change up to revision rev has been read, as
// of time at: a listing proved continuous and each entry after the last one
// read was added. Ignored once the truth is incomplete.
func (t *Truth) Through(rev int64, at time.Time) {
	if !t.Complete() {
		return
	}
	t.Known = max(t.Known, rev)
	if at.After(t.KnownAt) {
		t.KnownAt = at
	}
}

// truthIndex speeds up replays: the distinct revisions, where each starts
// in Changes, and the state before every markEvery-th revision.
type truthIndex struct {
	revs  []int64
	start []int // index in Changes of each revision's first change
	marks []map[string]string
}

const markEvery = 64

func (t *Truth) index() *truthIndex {
	if t.idx != nil {
		return t.idx
	}
	x := &truthIndex{}
	state := map[string]string{}
	for i, c := range t.Changes {
		if n := len(x.revs); n == 0 || x.revs[n-1] != c.Rev {
			if n%markEvery == 0 {
				x.marks = append(x.marks, maps.Clone(state))
			}
			x.revs = append(x.revs, c.Rev)
			x.start = append(x.start, i)
		}
		apply(state, c)
	}
	t.idx = x
	return x
}

func apply(state map[string]string, c Change) {
	if c.Del {
		delete(state, c.Member)
	} else {
		state[c.Member] = c.Value
	}
}

// At returns the members (id to value) at revision rev, and false when the
// truth does not know them (rev beyond Known).
func (t *Truth) At(rev int64) (map[string]string, bool) {
	if rev > t.Known {
		return nil, false
	}
	x := t.index()
	if len(x.marks) == 0 {
		return map[string]string{}, true
	}
	n := sort.Search(len(x.revs), func(i int) bool { return x.revs[i] > rev }) // revisions <= rev
	k := min(n/markEvery, len(x.marks)-1)
	state := maps.Clone(x.marks[k])
	from, end := x.start[k*markEvery], len(t.Changes)
	if n < len(x.revs) {
		end = x.start[n]
	}
	for _, c := range t.Changes[from:end] {
		apply(state, c)
	}
	return state, true
}

// ChangesAt returns the changes of the transaction at revision rev.
func (t *Truth) ChangesAt(rev int64) []Change {
	i := sort.Search(len(t.Changes), func(i int) bool { return t.Changes[i].Rev >= rev })
	j := i
	for j < len(t.Changes) && t.Changes[j].Rev == rev {
		j++
	}
	return t.Changes[i:j]
}

// RevsIn returns the revisions in (after, upto] at which the group changed.
func (t *Truth) RevsIn(after, upto int64) []int64 {
	x := t.index()
	i := sort.Search(len(x.revs), func(i int) bool { return x.revs[i] > after })
	j := sort.Search(len(x.revs), func(i int) bool { return x.revs[i] > upto })
	return x.revs[i:j]
}

// describeRev says what the transaction at rev changed, e.g.
// "put a=1, del b".
func (t *Truth) describeRev(rev int64) string {
	var parts []string
	for _, c := range t.ChangesAt(rev) {
		if c.Del {
			parts = append(parts, "del "+c.Member)
		} else {
			parts = append(parts, fmt.Sprintf("put %s=%q", c.Member, c.Value))
		}
	}
	if len(parts) == 0 {
		return "no change"
	}
	return joinLimited(parts, 4)
}

// joinLimited joins the first n parts with ", " and says how many more
// there are.
func joinLimited(parts []string, n int) string {
	if len(parts) <= n {
		return strings.Join(parts, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(parts[:n], ", "), len(parts)-n)
}

// CheckTruth is the recorder's self-check: replaying the journal gives
// exactly members, the members directory read at the end of the run (with
// nothing changing meanwhile). One check; unchecked when the truth is
// incomplete or members is nil (not read).
func CheckTruth(t *Truth, members map[string]string) Result {
	r := Result{Name: "truth"}
	if members == nil {
		r.Unchecked++
		r.note("unchecked: the members directory of group %s was not read while the journal stood still", t.Group)
		return r
	}
	if !t.Complete() {
		r.Unchecked++
		r.note("unchecked: the journal of group %s was not followed to the end (%s); checks of revisions after %d are unchecked", t.Group, t.Gap, t.Known)
		return r
	}
	r.check()
	replay, _ := t.At(t.Known)
	if d := diffMembers(members, replay); d != "" {
		r.fail("group %s: the journal's replay to revision %d (%d entries) differs from the members directory: %s", t.Group, t.Known, len(t.Changes), d)
	}
	return r
}
