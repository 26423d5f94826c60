package checker

import (
	"sort"
	"time"
)

// span is an interval during which a term was live; a zero to means it never
// ended within the history.
type span struct{ from, to time.Time }

// term is one leader's term of an election: one fencing token.
type term struct {
	token  int64
	client string
	first  time.Time // first ELECTED
	spans  []span
}

// liveAt reports whether the term was live at t, an end less than slack
// after t counting as before it.
func (tm *term) liveAt(t time.Time, slack time.Duration) bool {
	for _, s := range tm.spans {
		if s.from.Before(t) && (s.to.IsZero() || s.to.After(t.Add(slack))) {
			return true
		}
	}
	return false
}

// CheckLeadership checks leader election over the history:
//
//   - tokens: the fencing token of each new term (a token first ELECTED) is
//     higher than every earlier term's of that election, and an ELECTED with
//     a known token comes from the same client and while no newer term has
//     begun (one check per later ELECTED);
//   - fencing: the accepted writes of the protected resource never go back
//     to a lower token, and carry a token that client was ELECTED with (one
//     check per accepted write);
//   - overlap: when a new term begins, every earlier term of the election is
//     over: RESIGNED, LOST, TermEnded, or past its JEOPARDY deadline without
//     an ELECTED resuming it (one check per earlier term).
//
// Option WithSlack tolerates events of different clients that close.
func CheckLeadership(h *History, opts ...Option) Result {
	o := newOptions(opts)
	r := Result{Name: "leadership"}
	evs := h.Events()
	byElection := map[string][]Event{}
	writes := map[string][]Event{}
	for _, e := range evs {
		switch e.Kind {
		case KindElected, KindJeopardy, KindResigned, KindLost, KindTermEnded:
			byElection[e.Election] = append(byElection[e.Election], e)
		case KindResourceWrite:
			writes[e.Election] = append(writes[e.Election], e)
		}
	}
	for _, name := range sortedKeys(byElection, writes) {
		terms := buildTerms(byElection[name])
		checkTerms(&r, name, byElection[name], terms, o.slack)
		checkWrites(&r, name, writes[name], terms)
	}
	return r
}

// buildTerms derives each term's live spans from the election's events.
func buildTerms(evs []Event) map[int64]*term {
	terms := map[int64]*term{}
	since := map[int64]time.Time{}    // live since; absent when not live
	jeopardy := map[int64]time.Time{} // deadline while in jeopardy
	closeAt := func(tm *term, t time.Time) {
		tm.spans = append(tm.spans, span{since[tm.token], t})
		delete(since, tm.token)
		delete(jeopardy, tm.token)
	}
	for _, e := range evs {
		tm := terms[e.Token]
		if tm == nil {
			if e.Kind != KindElected {
				continue // nothing to end: the ELECTED was not recorded
			}
			tm = &term{token: e.Token, client: e.Client, first: e.Time}
			terms[e.Token] = tm
		}
		_, live := since[e.Token]
		if d, ok := jeopardy[e.Token]; live && ok && !d.After(e.Time) {
			closeAt(tm, d)
			live = false
		}
		switch e.Kind {
		case KindElected:
			if live {
				delete(jeopardy, e.Token) // resumed
			} else {
				since[e.Token] = e.Time
			}
		case KindJeopardy:
			if !live {
				break
			}
			if e.Deadline.IsZero() || !e.Deadline.After(e.Time) {
				closeAt(tm, e.Time)
			} else if d, ok := jeopardy[e.Token]; !ok || e.Deadline.Before(d) {
				jeopardy[e.Token] = e.Deadline
			}
		default: // RESIGNED, LOST, TermEnded
			if live {
				closeAt(tm, e.Time)
			}
		}
	}
	for tok, from := range since {
		terms[tok].spans = append(terms[tok].spans, span{from, jeopardy[tok]})
	}
	return terms
}

// checkTerms checks token order and overlap at each ELECTED.
func checkTerms(r *Result, name string, evs []Event, terms map[int64]*term, slack time.Duration) {
	seen := map[int64]bool{}
	var maxTok int64
	var maxFirst time.Time
	for _, e := range evs {
		if e.Kind != KindElected {
			continue
		}
		tm := terms[e.Token]
		if seen[e.Token] { // the same term again
			r.check()
			switch {
			case e.Client != tm.client:
				r.fail("tokens: election %s: token %d ELECTED for %s at %s, already %s's", name, e.Token, e.Client, ts(e.Time), tm.client)
			case e.Token < maxTok && e.Time.After(maxFirst.Add(slack)):
				r.fail("tokens: election %s: %s ELECTED again with token %d at %s after token %d began at %s", name, e.Client, e.Token, ts(e.Time), maxTok, ts(maxFirst))
			}
			continue
		}
		if len(seen) > 0 {
			r.check()
			if e.Token < maxTok && e.Time.After(maxFirst.Add(slack)) {
				r.fail("tokens: election %s: new term of %s at %s has token %d, lower than token %d of an earlier term", name, e.Client, ts(e.Time), e.Token, maxTok)
			}
			for _, old := range sortedTerms(terms) {
				if !seen[old.token] {
					continue
				}
				r.check()
				if old.liveAt(e.Time, slack) {
					r.fail("overlap: election %s: %s ELECTED with token %d at %s while %s's term (token %d) was live", name, e.Client, e.Token, ts(e.Time), old.client, old.token)
				}
			}
		}
		seen[e.Token] = true
		if len(seen) == 1 || e.Token > maxTok {
			maxTok, maxFirst = e.Token, e.Time
		}
	}
}

// checkWrites checks the protected resource's accepted writes.
func checkWrites(r *Result, name string, writes []Event, terms map[int64]*term) {
	var high int64
	var highAt time.Time
	for _, w := range writes {
		if !w.Accepted {
			continue
		}
		r.check()
		tm := terms[w.Token]
		switch {
		case !highAt.IsZero() && w.Token < high:
			r.fail("fencing: election %s: write with token %d by %s accepted at %s after token %d at %s", name, w.Token, w.Client, ts(w.Time), high, ts(highAt))
		case tm == nil:
			r.fail("fencing: election %s: write by %s accepted at %s with token %d that no one was ELECTED with", name, w.Client, ts(w.Time), w.Token)
		case w.Client != "" && w.Client != tm.client:
			r.fail("fencing: election %s: write by %s accepted at %s with token %d of %s", name, w.Client, ts(w.Time), w.Token, tm.client)
		}
		if highAt.IsZero() || w.Token >= high {
			high, highAt = w.Token, w.Time
		}
	}
}

// sortedTerms returns the terms by token.
func sortedTerms(terms map[int64]*term) []*term {
	out := make([]*term, 0, len(terms))
	for _, tm := range terms {
		out = append(out, tm)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].token < out[j].token })
	return out
}

// sortedKeys returns the union of the maps' keys, sorted.
func sortedKeys[V any](ms ...map[string]V) []string {
	set := map[string]bool{}
	for _, m := range ms {
		for k := range m {
			set[k] = true
		}
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
