package checker

import "time"

// Lock events, recorded by the lock workload. Each uses Lock, Token and
// Shared (the hold's mode) besides Time, Kind and Client.
const (
	// KindLockHeld: the client's Acquire stream (through the Go client's
	// Lock) said HELD, or its hold came out of jeopardy. The same token
	// again is the same hold.
	KindLockHeld Kind = "lock-held"
	// KindLockJeopardy: the holder's stream said JEOPARDY (or the client
	// lost its stream). Deadline: the hold is over then unless a
	// KindLockHeld of the same token comes first.
	KindLockJeopardy Kind = "lock-jeopardy"
	// KindLockReleased: the holder gave the lock up. Time is when it called
	// Unlock (it stops acting on the lock then).
	KindLockReleased Kind = "lock-released"
	// KindLockLost: the hold ended without an Unlock (LOST).
	KindLockLost Kind = "lock-lost"
	// KindLockEnded: the client stopped acting on the lock without being
	// told (it crashed, or its own jeopardy timer fired).
	KindLockEnded Kind = "lock-ended"
	// KindLockWrite: an operation reached the fenced resource of the lock,
	// which admits a token unless a newer holder's was admitted (a shared
	// one: unless a newer exclusive one was). Accepted says whether it was;
	// Client is the holder. Recorded under the resource's lock, so Time
	// orders the operations.
	KindLockWrite Kind = "lock-write"
)

// asTerm maps a lock event to the election event of the same meaning, so
// that a hold's live spans are built as a term's (buildTerms).
var asTerm = map[Kind]Kind{
	KindLockHeld: KindElected, KindLockJeopardy: KindJeopardy, KindLockReleased: KindResigned,
	KindLockLost: KindLost, KindLockEnded: KindTermEnded,
}

// CheckLocks checks locks over the history, per lock:
//
//   - tokens: an exclusive hold's token (a token first HELD) is higher
//     than every earlier hold's of the lock, a shared hold's higher than
//     every earlier exclusive hold's (readers that queued together may
//     say HELD in any order); a HELD with a known token comes from the
//     same client and mode (one check per later HELD);
//   - exclusion: when a hold begins, no other hold it excludes is live:
//     for an exclusive hold, none; for a shared one, no exclusive one.
//     A hold is live from its HELD until RELEASED, LOST, ended, or its
//     JEOPARDY deadline without a HELD resuming it (one check per earlier
//     hold);
//   - fencing: the resource's accepted operations never admit an
//     exclusive token below one admitted before, nor a shared token below
//     an exclusive one admitted before, and carry a token the client held
//     in that mode (one check per accepted operation).
//
// Option WithSlack tolerates events of different clients that close.
func CheckLocks(h *History, opts ...Option) Result {
	o := newOptions(opts)
	r := Result{Name: "locks"}
	holds := map[string][]Event{}
	writes := map[string][]Event{}
	for _, e := range h.Events() {
		switch e.Kind {
		case KindLockHeld, KindLockJeopardy, KindLockReleased, KindLockLost, KindLockEnded:
			holds[e.Lock] = append(holds[e.Lock], e)
		case KindLockWrite:
			writes[e.Lock] = append(writes[e.Lock], e)
		}
	}
	for _, name := range sortedKeys(holds, writes) {
		evs := make([]Event, len(holds[name]))
		shared := map[int64]bool{}
		for i, e := range holds[name] {
			evs[i] = e
			evs[i].Kind = asTerm[e.Kind]
			if e.Kind == KindLockHeld {
				if _, ok := shared[e.Token]; !ok {
					shared[e.Token] = e.Shared
				}
			}
		}
		terms := buildTerms(evs)
		checkHolds(&r, name, holds[name], terms, shared, o.slack)
		checkFenced(&r, name, writes[name], terms, shared)
	}
	return r
}

// checkHolds checks token order and exclusion at each HELD.
func checkHolds(r *Result, name string, evs []Event, terms map[int64]*term, shared map[int64]bool, slack time.Duration) {
	seen := map[int64]bool{}
	var maxTok, maxExcl int64
	var maxAt, maxExclAt time.Time
	for _, e := range evs {
		if e.Kind != KindLockHeld {
			continue
		}
		tm := terms[e.Token]
		if seen[e.Token] { // the same hold again
			r.check()
			if e.Client != tm.client || e.Shared != shared[e.Token] {
				r.fail("tokens: lock %s: token %d HELD for %s (shared %v) at %s, already %s's (shared %v)",
					name, e.Token, e.Client, e.Shared, ts(e.Time), tm.client, shared[e.Token])
			}
			continue
		}
		if len(seen) > 0 {
			floor, floorAt := maxTok, maxAt
			if e.Shared {
				floor, floorAt = maxExcl, maxExclAt
			}
			r.check()
			if e.Token < floor && e.Time.After(floorAt.Add(slack)) {
				r.fail("tokens: lock %s: new hold of %s (shared %v) at %s has token %d, lower than token %d of an earlier hold",
					name, e.Client, e.Shared, ts(e.Time), e.Token, floor)
			}
			for _, old := range sortedTerms(terms) {
				if !seen[old.token] || (e.Shared && shared[old.token]) {
					continue // not begun yet, or readers together
				}
				r.check()
				if old.liveAt(e.Time, slack) {
					r.fail("exclusion: lock %s: %s HELD (shared %v) with token %d at %s while %s's hold (token %d, shared %v) was live",
						name, e.Client, e.Shared, e.Token, ts(e.Time), old.client, old.token, shared[old.token])
				}
			}
		}
		seen[e.Token] = true
		if e.Token > maxTok || maxAt.IsZero() {
			maxTok, maxAt = e.Token, e.Time
		}
		if !e.Shared && (e.Token > maxExcl || maxExclAt.IsZero()) {
			maxExcl, maxExclAt = e.Token, e.Time
		}
	}
}

// checkFenced checks the resource's accepted operations.
func checkFenced(r *Result, name string, writes []Event, terms map[int64]*term, shared map[int64]bool) {
	var high, highExcl int64
	for _, w := range writes {
		if !w.Accepted {
			continue
		}
		r.check()
		tm := terms[w.Token]
		floor := high
		if w.Shared {
			floor = highExcl
		}
		switch {
		case w.Token < floor:
			r.fail("fencing: lock %s: operation with token %d (shared %v) by %s accepted at %s after token %d",
				name, w.Token, w.Shared, w.Client, ts(w.Time), floor)
		case tm == nil:
			r.fail("fencing: lock %s: operation by %s accepted at %s with token %d that no one held", name, w.Client, ts(w.Time), w.Token)
		case w.Client != tm.client || w.Shared != shared[w.Token]:
			r.fail("fencing: lock %s: operation by %s (shared %v) accepted at %s with token %d of %s", name, w.Client, w.Shared,
				ts(w.Time), w.Token, tm.client)
		}
		high = max(high, w.Token)
		if !w.Shared {
			highExcl = max(highExcl, w.Token)
		}
	}
}
