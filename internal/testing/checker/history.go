package checker

import (
	"sort"
	"sync"
	"time"
)

// Kind says what an Event records, and so which of its fields are set.
type Kind string

// Event kinds. Each comment lists the fields the kind uses besides Time,
// Kind and Client (the client that observed or did it). Time is when the
// recording client saw the event unless the comment says otherwise.
const (
	// KindElected: the client's Campaign stream said ELECTED. Election, Token.
	// The same token again (after JEOPARDY or a resumed campaign) is the
	// same term, not a new one.
	KindElected Kind = "elected"
	// KindJeopardy: the leader's stream said JEOPARDY. Election, Token,
	// Deadline (jeopardy_deadline: the term is over at that time unless an
	// ELECTED with the same token comes first).
	KindJeopardy Kind = "jeopardy"
	// KindResigned: the leader gave the term up. Election, Token. Time is
	// when the client called Resign (it stops acting as leader then), not
	// when the RESIGNED answer came.
	KindResigned Kind = "resigned"
	// KindLost: the stream said LOST. Election, Token.
	KindLost Kind = "lost"
	// KindTermEnded: the client stopped acting as leader without being told
	// (its stream ended, its context was cancelled, its own jeopardy timer
	// fired). Election, Token.
	KindTermEnded Kind = "term-ended"
	// KindResourceWrite: a write reached the simulated protected resource,
	// which accepts a token at least as high as the highest it has seen.
	// Election, Token, Accepted; Client is the writer. Recorded by the
	// resource under its own lock, so Time orders the writes.
	KindResourceWrite Kind = "resource-write"

	// KindRegister: a Register call. Group, Member, Value, Lease (the owner;
	// "" for a persistent registration), Call, Return, Err, Revision (of
	// the answer). Time is Return.
	KindRegister Kind = "register"
	// KindDeregister: a Deregister call. Group, Member, Lease, Call, Return,
	// Err. Time is Return.
	KindDeregister Kind = "deregister"
	// KindLookup: a LINEARIZABLE Lookup. Group, Members (the answer: member
	// id to value), Revision, Call, Return, Err; Member when the lookup is
	// about that member only (Members then holds it or nothing). Time is
	// Return.
	KindLookup Kind = "lookup"
	// KindCachedLookup: a CACHED Lookup, with the fields of KindLookup. Only
	// CheckSnapshots reads it: a cached answer may be stale, but it must be
	// the group's exact state at its revision.
	KindCachedLookup Kind = "cached-lookup"
	// KindWatchEvent: one message of a WatchGroup stream, recorded in the
	// order the watcher received them; Client names the watcher (one stream
	// of states, across the client's reconnections). Group, Type, Revision;
	// for JOINED, UPDATED and LEFT: Member and Value (the member as the
	// message has it) and More (the message is not the last of its
	// revision); for SNAPSHOT: Members (the snapshot) and Resync (it
	// replaces what the watcher had instead of following from it).
	KindWatchEvent Kind = "watch-event"

	// KindKeepAliveOK: a renewal of Lease was acknowledged: a Grant or a
	// KeepAlive that succeeded (a successful Register under a lease renews
	// it too; record that as KindRegister). Lease, TTL, Call, Return,
	// Deadline (the expires_at of the answer, zero if unknown). Time is
	// Return. The server renewed the lease at some instant in [Call,
	// Return]. OpID "grant" marks a Grant (for examples).
	KindKeepAliveOK Kind = "keepalive-ok"
	// KindKeepAliveFailed: a keepalive of Lease failed with an unknown
	// outcome (Err: Unavailable, DeadlineExceeded, ...): the server may have
	// renewed the lease, at the latest when the client gave up. Lease, Call,
	// Return, Err. Time is Return.
	KindKeepAliveFailed Kind = "keepalive-failed"
	// KindLeaseLost: a keepalive of Lease answered NOT_FOUND: the lease had
	// ended by Return. Lease, Call, Return. Time is Return.
	KindLeaseLost Kind = "lease-lost"
	// KindRevoke: the client revoked Lease: it may end from Call on. Lease,
	// Call, Return, Err. Time is Call.
	KindRevoke Kind = "revoke"
	// KindLeaseKept: the client kept Lease alive without a failed renewal
	// from From to To. Lease, From, To. Record it when the interval ends.
	KindLeaseKept Kind = "lease-kept"
	// KindLeaseAbandoned: the client stopped keeping Lease alive at Time
	// (no keepalive after it; a revoke, if any, is recorded apart). Lease,
	// TTL, Replica (the replica that owned the lease then, "" if unknown).
	KindLeaseAbandoned Kind = "lease-abandoned"

	// KindBarrierArrive: the participant called AwaitBarrier. Barrier,
	// Threshold. Time is when the call started.
	KindBarrierArrive Kind = "barrier-arrive"
	// KindBarrierReleased: the participant's stream said released. Barrier,
	// Arrived (the count in that message, 0 if unknown).
	KindBarrierReleased Kind = "barrier-released"
	// KindBarrierGaveUp: the participant stopped waiting before its release
	// (cancelled, deadline, stream error). Barrier.
	KindBarrierGaveUp Kind = "barrier-gave-up"

	// KindPermitHeld: the client's AcquireSemaphore stream said HELD (its
	// Permit was granted, or confirmed again after a JEOPARDY). Semaphore,
	// Permits (N), Token. The same token again is the same permit.
	KindPermitHeld Kind = "permit-held"
	// KindPermitJeopardy: the holder's permit went into jeopardy.
	// Semaphore, Token, Deadline (the permit is over at that time unless
	// a HELD with the same token comes first).
	KindPermitJeopardy Kind = "permit-jeopardy"
	// KindPermitReleased: the holder gave the permit up. Semaphore, Token.
	// Time is when the client called Release (it stops using the permit
	// then), not when the answer came.
	KindPermitReleased Kind = "permit-released"
	// KindPermitLost: the holder was told LOST. Semaphore, Token.
	KindPermitLost Kind = "permit-lost"
	// KindPermitEnded: the holder stopped using the permit without being
	// told (its stream broke, it crashed, its jeopardy deadline passed).
	// Semaphore, Token.
	KindPermitEnded Kind = "permit-ended"

	// KindFault: the harness injected a fault and healed it. Value
	// describes it; From and To bound it. Replica names the replica whose
	// ZooKeeper session the fault may have cost ("*": any replica's, as
	// when the ZooKeeper leader dies; "": none, as for a drain, which hands
	// leases over with their expiry). CheckLeaseLifetime reads Replica,
	// From and To; events without From are only read by people.
	KindFault Kind = "fault"
)

// WatchType is the type of a WatchGroup event.
type WatchType string

// WatchGroup event types.
const (
	WatchSnapshot WatchType = "SNAPSHOT"
	WatchJoined   WatchType = "JOINED"
	WatchLeft     WatchType = "LEFT"
	WatchUpdated  WatchType = "UPDATED"
)

// Err values that the checkers read as a definite outcome; they are the
// names of gRPC codes (status.Code(err).String()). "" and "OK" mean success.
// Any other code (Unavailable, DeadlineExceeded, Canceled, Aborted, ...) is
// an unknown outcome: the call may or may not have taken effect.
const (
	ErrAlreadyExists      = "AlreadyExists"
	ErrNotFound           = "NotFound"
	ErrPermissionDenied   = "PermissionDenied"
	ErrInvalidArgument    = "InvalidArgument"
	ErrFailedPrecondition = "FailedPrecondition"
	ErrUnauthenticated    = "Unauthenticated"
)

// Event is one entry of a history: a client operation, an observation, or a
// fault action. It is one flat struct; Kind says which fields are used.
type Event struct {
	Seq    uint64    // set by History.Record, strictly increasing
	Time   time.Time // when it happened; History.Record sets now when zero
	Kind   Kind
	Client string

	Election string
	Token    int64     // fencing token
	Deadline time.Time // jeopardy deadline; a renewal's expires_at
	Accepted bool      // resource write accepted

	Group    string
	Member   string
	Value    string
	Members  map[string]string // lookup answer or snapshot: member id to value
	Type     WatchType
	Revision int64
	Resync   bool // a SNAPSHOT that replaces the watcher's state
	More     bool // a watch message that is not the last of its revision

	Lease    string
	TTL      time.Duration
	Replica  string // a lease's owner, or the replica a fault hit
	Drained  string // a fault that drained a replica: its leases moved to the others
	From, To time.Time

	Barrier   string
	Arrived   int
	Threshold int

	Lock   string
	Shared bool // a shared (read) hold's event

	Semaphore string
	Permits   int // a semaphore's N

	OpID         string    // the harness's id of the operation, for reading logs
	Call, Return time.Time // when a call was sent and when its answer came
	Err          string    // gRPC code name of the outcome; "" on success
}

// ok reports whether the event's call succeeded.
func (e Event) ok() bool { return e.Err == "" || e.Err == "OK" }

// definiteFailure reports whether the call failed without taking effect.
func (e Event) definiteFailure() bool {
	switch e.Err {
	case ErrAlreadyExists, ErrNotFound, ErrPermissionDenied, ErrInvalidArgument,
		ErrFailedPrecondition, ErrUnauthenticated:
		return true
	}
	return false
}

// unknown reports whether the call may or may not have taken effect.
func (e Event) unknown() bool { return !e.ok() && !e.definiteFailure() }

// History records events from many goroutines.
type History struct {
	mu     sync.Mutex
	seq    uint64
	events []Event
}

// NewHistory returns an empty history.
func NewHistory() *History { return &History{} }

// Record appends e, giving it the next sequence number and, when e.Time is
// zero, the current time. It is safe for concurrent use.
func (h *History) Record(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	e.Seq = h.seq
	h.events = append(h.events, e)
}

// Len returns the number of recorded events.
func (h *History) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.events)
}

// Events returns a copy of the events sorted by Time, ties broken by Seq.
func (h *History) Events() []Event {
	h.mu.Lock()
	evs := append([]Event(nil), h.events...)
	h.mu.Unlock()
	sort.SliceStable(evs, func(i, j int) bool {
		if !evs[i].Time.Equal(evs[j].Time) {
			return evs[i].Time.Before(evs[j].Time)
		}
		return evs[i].Seq < evs[j].Seq
	})
	return evs
}

// filter returns the events of the given kinds, in order.
func filter(evs []Event, kinds ...Kind) []Event {
	var out []Event
	for _, e := range evs {
		for _, k := range kinds {
			if e.Kind == k {
				out = append(out, e)
				break
			}
		}
	}
	return out
}

// memberKey names a member of a group.
type memberKey struct{ group, member string }

// byMember returns the events of the given kinds by group and member, in
// order.
func byMember(evs []Event, kinds ...Kind) map[memberKey][]Event {
	out := map[memberKey][]Event{}
	for _, e := range filter(evs, kinds...) {
		k := memberKey{e.Group, e.Member}
		out[k] = append(out[k], e)
	}
	return out
}
