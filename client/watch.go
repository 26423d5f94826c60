package client

import (
	"cmp"
	"context"
	"errors"
	"iter"
	"maps"
	"slices"

	zkcoordv1 "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

// GroupState is a registry group as a watch sees it at one revision. A
// watch never shows the middle of a revision: when one transaction changed
// several members (a lease's end removes all of its members at once), the
// state comes after all of them. Members maps IDs to members; the map and
// the members are shared with nothing that changes them, and must not be
// modified.
type GroupState struct {
	// Group is the group watched.
	Group string
	// Members are the group's members by ID.
	Members map[string]*zkcoordv1.Member
	// Revision is the revision (zxid) the state reflects: every change of
	// the group up to it, none after it.
	Revision int64
	// Events are the gateway's messages that produced this state, in the
	// order received: a snapshot (its pages, when it came in several), or
	// every change of Revision (a
	// member that joined, left or was updated; several when one transaction
	// changed several members).
	Events []*zkcoordv1.WatchGroupResponse
	// Event is the last of Events.
	Event *zkcoordv1.WatchGroupResponse
	// Resync is true when this state replaced the previous one instead of
	// following from it: the gateway could not prove continuity after a
	// reconnection, so changes in between may not have been seen one by one.
	Resync bool
	// Err is set in the last state a WatchGroup channel delivers when the
	// watch ended for another reason than its context: the gateway refused
	// it (a bad group name, say). Its other fields are then empty.
	Err error
}

// List returns the members sorted by ID.
func (s GroupState) List() []*zkcoordv1.Member {
	return slices.SortedFunc(maps.Values(s.Members), func(a, b *zkcoordv1.Member) int {
		return cmp.Compare(a.GetId(), b.GetId())
	})
}

// WatchGroup watches group (which need not exist yet) and sends its state on
// the returned channel after every change: first a snapshot, then one state
// per revision, that is per transaction: a member that joins, leaves or
// changes, or all the members of a lease that ended. When the stream breaks
// it reconnects with backoff and resumes after the last complete revision it
// delivered (messages of a revision received only in part are dropped and
// come again); when the gateway cannot resume it sends a new snapshot,
// delivered with Resync set. States are never dropped: the watch waits for a
// slow reader (and the gateway may then end the stream, which comes back as
// a resync).
//
// The channel is closed when ctx ends or the client is closed. When the
// gateway refuses the watch for good, the last state carries Err.
func (c *Client) WatchGroup(ctx context.Context, group string) <-chan GroupState {
	ch := make(chan GroupState)
	ctx, release := c.bind(ctx)
	started := c.grp.start(func() {
		defer close(ch)
		defer release()
		err := c.watchGroup(ctx, group, func(s GroupState) bool {
			select {
			case ch <- s:
				return true
			case <-ctx.Done():
				return false
			}
		})
		if err != nil && ctx.Err() == nil {
			select {
			case ch <- GroupState{Group: group, Err: err}:
			case <-ctx.Done():
			}
		}
	})
	if !started {
		release()
		closed := make(chan GroupState, 1)
		closed <- GroupState{Group: group, Err: ErrClosed}
		close(closed)
		return closed
	}
	return ch
}

// WatchGroupSeq is WatchGroup as an iterator, for range-over-func: it yields
// the same states with a nil error, on the goroutine of the loop. When the
// watch ends it yields a last error: the cause of ctx when ctx ended,
// ErrClosed when the client was closed, or the gateway's refusal. Breaking
// out of the loop ends the watch.
func (c *Client) WatchGroupSeq(ctx context.Context, group string) iter.Seq2[GroupState, error] {
	return func(yield func(GroupState, error) bool) {
		ctx, release := c.bind(ctx)
		defer release()
		err := c.watchGroup(ctx, group, func(s GroupState) bool { return yield(s, nil) })
		if !errors.Is(err, errStopped) {
			yield(GroupState{Group: group}, err)
		}
	}
}

// errStopped says that emit asked a watch to stop.
var errStopped = errors.New("client: stopped by the consumer")

// watchGroup runs a watch, passing each state to emit, until emit returns
// false (then it returns errStopped), ctx ends or the gateway refuses it.
func (c *Client) watchGroup(ctx context.Context, group string, emit func(GroupState) bool) error {
	v := groupView{group: group}
	return c.retry(ctx, "watch group "+group, func(b *backoff) error {
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		v.dropPartial()
		stream, err := c.rpc.registry.WatchGroup(sctx, &zkcoordv1.WatchGroupRequest{Group: group, StartRevision: v.resumeFrom(),
			SnapshotPageSize: snapshotPage})
		if err != nil {
			return callErr(sctx, err, ErrNotFound)
		}
		for {
			msg, err := stream.Recv()
			if err != nil {
				return callErr(sctx, err, ErrNotFound)
			}
			b.reset()
			if s, ok := v.apply(msg); ok && !emit(s) {
				return errStopped
			}
		}
	})
}

// snapshotPage is the snapshot_page_size a watch asks for: the gateway's
// default page, so that a snapshot of any size arrives within gRPC's
// default 4 MiB message limit. (A gateway that predates pages sends the
// snapshot whole, which the view takes as well.)
const snapshotPage = 10000

// groupView maintains a group's members from the messages of its watch,
// one complete revision at a time.
type groupView struct {
	group   string
	members map[string]*zkcoordv1.Member // at rev; nil before the first snapshot
	rev     int64                        // the last complete revision

	next    map[string]*zkcoordv1.Member // members with pending applied; nil when none
	pending []*zkcoordv1.WatchGroupResponse
	snap    map[string]*zkcoordv1.Member // the pages of a snapshot received so far; nil when none
}

// resumeFrom is the start_revision of the next watch request: the last
// complete revision, or 0 (a snapshot) before the first snapshot.
func (v *groupView) resumeFrom() int64 {
	if v.members == nil {
		return 0
	}
	return v.rev
}

// dropPartial forgets the messages of a revision received only in part
// (the stream broke before its last): the next stream resumes before it.
func (v *groupView) dropPartial() { v.next, v.pending, v.snap = nil, nil, nil }

// apply applies one message. It returns the new state once a revision is
// complete (a snapshot, or a change with more false), and false while the
// revision goes on or when the message changes nothing that can be known:
// it is older than the state, of an unknown type, or a change before any
// snapshot.
func (v *groupView) apply(msg *zkcoordv1.WatchGroupResponse) (GroupState, bool) {
	switch typ := msg.GetType(); {
	case typ == zkcoordv1.WatchGroupResponse_TYPE_SNAPSHOT:
		// A snapshot may come in pages, all of its revision, all but the
		// last with more set: the state is complete with the last.
		if v.snap == nil || len(v.pending) == 0 || v.pending[0].GetType() != typ || v.pending[0].GetRevision() != msg.GetRevision() {
			v.next, v.pending = nil, nil
			v.snap = make(map[string]*zkcoordv1.Member, len(msg.GetMembers()))
		}
		for _, m := range msg.GetMembers() {
			v.snap[m.GetId()] = m
		}
		v.pending = append(v.pending, msg)
		if msg.GetMore() {
			return GroupState{}, false
		}
		resync := msg.GetResync() || v.members != nil
		s := GroupState{Group: v.group, Members: v.snap, Revision: msg.GetRevision(), Events: v.pending, Event: msg, Resync: resync}
		v.members, v.rev = v.snap, msg.GetRevision()
		v.dropPartial()
		return s, true
	case v.members == nil, msg.GetRevision() < v.rev:
		return GroupState{}, false
	case typ == zkcoordv1.WatchGroupResponse_TYPE_JOINED, typ == zkcoordv1.WatchGroupResponse_TYPE_UPDATED:
		v.change().next[msg.GetMember().GetId()] = msg.GetMember()
	case typ == zkcoordv1.WatchGroupResponse_TYPE_LEFT:
		delete(v.change().next, msg.GetMember().GetId())
	default: // unknown: nothing to apply, but it may end a revision
		if v.next == nil {
			return GroupState{}, false
		}
	}
	v.pending = append(v.pending, msg)
	if msg.GetMore() {
		return GroupState{}, false
	}
	s := GroupState{Group: v.group, Members: v.next, Revision: msg.GetRevision(), Events: v.pending, Event: msg}
	v.members, v.rev = v.next, msg.GetRevision()
	v.dropPartial()
	return s, true
}

// change starts the next state from the current one, on the first change
// of a revision; the states already delivered are never modified.
func (v *groupView) change() *groupView {
	if v.next == nil {
		v.next = maps.Clone(v.members)
	}
	return v
}
