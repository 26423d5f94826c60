package checker

import (
	"fmt"
	"maps"
	"sort"
)

// CheckWatchDelivery checks each watcher's messages against the truth. A
// watcher's messages (KindWatchEvent, one Client, in the order received)
// form revisions: a SNAPSHOT alone, or the JOINED, UPDATED and LEFT of one
// revision (WithMore: up to the message whose More is false; otherwise the
// consecutive messages of one revision). Replaying them from the first
// snapshot:
//
//   - every revision the watcher reports carries exactly the truth's net
//     change at that revision: a JOINED for each member absent before and
//     present after, an UPDATED for each member put while present, a LEFT
//     for each member deleted, with the value the truth has, and nothing
//     else; and the replayed members then equal the truth at that
//     revision (one check per reported revision);
//   - no change is skipped: every revision at which the group changed,
//     after the watcher's state and up to a revision it reports, is
//     reported, unless a resync snapshot replaces the state over it (one
//     check, and one violation, per missed revision);
//   - revisions rise; a snapshot after the first is marked resync and does
//     not go back (one check per later snapshot); with WithMore, a
//     revision's last message has More false and the others true.
//
// A snapshot's own content is CheckSnapshots' business: here a snapshot
// that differs from the truth is replaced by the truth, as is the state
// after a violation, so that one fault is reported once. Revisions beyond
// the truth are unchecked, and so is a revision whose messages end with
// More at the end of the stream. Changes after the last revision a watcher
// reports are left to CheckConvergence.
func CheckWatchDelivery(h *History, t *Truth, opts ...Option) Result {
	o := newOptions(opts)
	r := Result{Name: "watch-delivery"}
	streams := map[string][]Event{}
	for _, e := range h.Events() {
		if e.Kind == KindWatchEvent && e.Group == t.Group {
			streams[e.Client] = append(streams[e.Client], e)
		}
	}
	for _, w := range sortedKeys(streams) {
		msgs := streams[w]
		sort.SliceStable(msgs, func(i, j int) bool { return msgs[i].Seq < msgs[j].Seq })
		checkStream(&r, t, w, watchRevisions(msgs, o.more))
	}
	sortExamples(&r)
	return r
}

// watchRevision is one revision of a watch as its messages tell it.
type watchRevision struct {
	rev      int64
	snapshot *Event // a SNAPSHOT message, alone
	events   []Event
	open     bool   // its last message said more
	broken   string // what is wrong with its framing, "" if nothing
}

// watchRevisions groups a watcher's messages into revisions.
func watchRevisions(msgs []Event, more bool) []watchRevision {
	var out []watchRevision
	for i := range msgs {
		m := msgs[i]
		n := len(out)
		var last *watchRevision
		if n > 0 {
			last = &out[n-1]
		}
		if m.Type == WatchSnapshot {
			if last != nil && last.open {
				last.broken = "its last message said more, then came a snapshot"
				last.open = false
			}
			out = append(out, watchRevision{rev: m.Revision, snapshot: &m})
			continue
		}
		if more {
			if last != nil && last.open && last.rev == m.Revision {
				last.events = append(last.events, m)
				last.open = m.More
				continue
			}
			if last != nil && last.open {
				last.broken = fmt.Sprintf("its last message said more, then came revision %d", m.Revision)
				last.open = false
			}
		} else if last != nil && last.snapshot == nil && last.rev == m.Revision {
			last.events = append(last.events, m)
			continue
		}
		out = append(out, watchRevision{rev: m.Revision, events: []Event{m}, open: more && m.More})
	}
	return out
}

// checkStream replays one watcher's revisions.
func checkStream(r *Result, t *Truth, w string, revs []watchRevision) {
	var state map[string]string // nil before the first snapshot
	var rev int64
	for i, b := range revs {
		if b.rev > t.Known {
			r.Unchecked += len(revs) - i
			r.note("unchecked: %s's last %d revisions, from %d on, lie beyond the truth (complete to %d)", w, len(revs)-i, b.rev, t.Known)
			return
		}
		if b.snapshot != nil {
			s := b.snapshot
			if state != nil {
				r.check()
				switch {
				case !s.Resync:
					r.fail("%s: snapshot at revision %d (%s) replaces the state at %d without resync", w, s.Revision, ts(s.Time), rev)
				case s.Revision < rev:
					r.fail("%s: resync snapshot at revision %d (%s) goes back from revision %d", w, s.Revision, ts(s.Time), rev)
				}
			}
			state, rev = maps.Clone(s.Members), s.Revision
			if state == nil {
				state = map[string]string{}
			}
			if want, _ := t.At(rev); !maps.Equal(want, state) {
				state = want // CheckSnapshots reports it
			}
			continue
		}
		first := b.events[0]
		if state == nil {
			r.check()
			r.fail("%s: %s %s at revision %d (%s) before any snapshot", w, first.Type, first.Member, b.rev, ts(first.Time))
			continue
		}
		if b.open && i == len(revs)-1 {
			r.Unchecked++
			r.note("unchecked: %s's stream ends inside revision %d (its last message said more)", w, b.rev)
			continue
		}
		if b.rev <= rev {
			r.check()
			r.fail("%s: revision %d (%s %s, %s) after revision %d: revisions must rise", w, b.rev, first.Type, first.Member, ts(first.Time), rev)
			continue
		}
		missed := t.RevsIn(rev, b.rev-1)
		for _, m := range missed {
			r.check()
			r.fail("%s: missed revision %d (%s) between revisions %d and %d (%s), with no resync snapshot", w, m, t.describeRev(m), rev, b.rev, ts(first.Time))
		}
		before, _ := t.At(b.rev - 1)
		if len(missed) > 0 {
			state = before
		}
		after, _ := t.At(b.rev)
		r.check()
		problems := deliveryProblems(t.ChangesAt(b.rev), before, b.events)
		state = maps.Clone(state)
		for _, e := range b.events {
			if e.Type == WatchLeft {
				delete(state, e.Member)
			} else {
				state[e.Member] = e.Value
			}
		}
		if len(problems) == 0 && !maps.Equal(state, after) {
			problems = append(problems, "replayed state differs from the truth: "+diffMembers(after, state))
		}
		if b.broken != "" {
			problems = append(problems, b.broken)
		}
		if len(problems) > 0 {
			r.fail("%s: revision %d (%s): %s; the truth: %s", w, b.rev, ts(first.Time), joinLimited(problems, 3), t.describeRev(b.rev))
			state = after
		}
		rev = b.rev
	}
}

// watchChange is what a message says of one member.
type watchChange struct {
	typ   WatchType
	value string
}

func (c watchChange) String() string {
	if c.typ == WatchLeft {
		return string(c.typ)
	}
	return fmt.Sprintf("%s=%q", c.typ, c.value)
}

// deliveryProblems compares a revision's messages with the truth's net
// change: changes are the transaction's, before the members before it.
func deliveryProblems(changes []Change, before map[string]string, msgs []Event) []string {
	after := maps.Clone(before)
	for _, c := range changes {
		apply(after, c)
	}
	want := map[string]watchChange{}
	for _, c := range changes {
		_, was := before[c.Member]
		v, is := after[c.Member]
		switch {
		case !was && is:
			want[c.Member] = watchChange{WatchJoined, v}
		case was && !is:
			want[c.Member] = watchChange{WatchLeft, ""}
		case was && is:
			want[c.Member] = watchChange{WatchUpdated, v}
		}
	}
	var problems []string
	if len(changes) == 0 {
		problems = append(problems, "the group did not change at this revision")
	}
	got := map[string]watchChange{}
	for _, m := range msgs {
		c := watchChange{m.Type, m.Value}
		if m.Type == WatchLeft {
			c.value = ""
		}
		if _, dup := got[m.Member]; dup {
			problems = append(problems, fmt.Sprintf("two messages for %s", m.Member))
		}
		got[m.Member] = c
	}
	for _, id := range sortedKeys(want, got) {
		g, has := got[id]
		w, wanted := want[id]
		switch {
		case !has:
			problems = append(problems, fmt.Sprintf("missing %s %s", id, w))
		case !wanted:
			problems = append(problems, fmt.Sprintf("unexpected %s %s", id, g))
		case g != w:
			problems = append(problems, fmt.Sprintf("%s %s, want %s", id, g, w))
		}
	}
	return problems
}
