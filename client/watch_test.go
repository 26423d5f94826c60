package client

import (
	"context"
	"errors"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	zkcoordv1 "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

const (
	snapshot = zkcoordv1.WatchGroupResponse_TYPE_SNAPSHOT
	joined   = zkcoordv1.WatchGroupResponse_TYPE_JOINED
	left     = zkcoordv1.WatchGroupResponse_TYPE_LEFT
	updated  = zkcoordv1.WatchGroupResponse_TYPE_UPDATED
)

func member(id, value string) *zkcoordv1.Member {
	return &zkcoordv1.Member{Group: "g", Id: id, Value: value}
}

func snap(rev int64, resync bool, ms ...*zkcoordv1.Member) *zkcoordv1.WatchGroupResponse {
	return &zkcoordv1.WatchGroupResponse{Type: snapshot, Revision: rev, Members: ms, Resync: resync}
}

func change(typ zkcoordv1.WatchGroupResponse_Type, rev int64, m *zkcoordv1.Member) *zkcoordv1.WatchGroupResponse {
	return &zkcoordv1.WatchGroupResponse{Type: typ, Revision: rev, Member: m}
}

// cont marks msg as followed by more messages of its revision.
func cont(msg *zkcoordv1.WatchGroupResponse) *zkcoordv1.WatchGroupResponse {
	msg.More = true
	return msg
}

// values renders a state's members as id=value, sorted.
func values(s GroupState) []string {
	var out []string
	for _, m := range s.List() {
		out = append(out, m.GetId()+"="+m.GetValue())
	}
	return out
}

func TestGroupViewApply(t *testing.T) {
	type step struct {
		msg     *zkcoordv1.WatchGroupResponse
		emitted bool
		members []string
		rev     int64
		resync  bool
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"snapshot then changes", []step{
			{snap(5, false, member("a", "1"), member("b", "2")), true, []string{"a=1", "b=2"}, 5, false},
			{change(joined, 6, member("c", "3")), true, []string{"a=1", "b=2", "c=3"}, 6, false},
			{change(updated, 7, member("a", "9")), true, []string{"a=9", "b=2", "c=3"}, 7, false},
			{change(left, 8, member("b", "2")), true, []string{"a=9", "c=3"}, 8, false},
		}},
		{"empty group", []step{
			{snap(3, false), true, nil, 3, false},
			{change(joined, 4, member("a", "1")), true, []string{"a=1"}, 4, false},
		}},
		{"changes before a snapshot are ignored", []step{
			{change(joined, 4, member("a", "1")), false, nil, 0, false},
			{snap(5, false, member("b", "2")), true, []string{"b=2"}, 5, false},
		}},
		{"older changes are ignored", []step{
			{snap(5, false, member("a", "1")), true, []string{"a=1"}, 5, false},
			{change(left, 4, member("a", "1")), false, []string{"a=1"}, 5, false},
		}},
		{"changes of one revision make one state", []step{
			{snap(5, false, member("a", "1"), member("b", "2")), true, []string{"a=1", "b=2"}, 5, false},
			{cont(change(left, 6, member("a", "1"))), false, []string{"a=1", "b=2"}, 5, false},
			{cont(change(joined, 6, member("c", "3"))), false, []string{"a=1", "b=2"}, 5, false},
			{change(left, 6, member("b", "2")), true, []string{"c=3"}, 6, false},
			{change(updated, 7, member("c", "4")), true, []string{"c=4"}, 7, false},
		}},
		{"an unknown type can end a revision", []step{
			{snap(5, false, member("a", "1")), true, []string{"a=1"}, 5, false},
			{cont(change(left, 6, member("a", "1"))), false, []string{"a=1"}, 5, false},
			{change(zkcoordv1.WatchGroupResponse_TYPE_UNSPECIFIED, 6, member("b", "2")), true, nil, 6, false},
		}},
		{"a snapshot drops a revision in progress", []step{
			{snap(5, false, member("a", "1")), true, []string{"a=1"}, 5, false},
			{cont(change(left, 6, member("a", "1"))), false, []string{"a=1"}, 5, false},
			{snap(9, true, member("z", "26")), true, []string{"z=26"}, 9, true},
			{change(joined, 10, member("y", "25")), true, []string{"y=25", "z=26"}, 10, false},
		}},
		{"a later snapshot replaces the state", []step{
			{snap(5, false, member("a", "1")), true, []string{"a=1"}, 5, false},
			{snap(9, true, member("z", "26")), true, []string{"z=26"}, 9, true},
			{snap(10, false, member("y", "25")), true, []string{"y=25"}, 10, true},
		}},
		{"a snapshot in pages makes one state", []step{
			{cont(snap(5, false, member("a", "1"))), false, nil, 0, false},
			{cont(snap(5, false, member("b", "2"))), false, nil, 0, false},
			{snap(5, false, member("c", "3")), true, []string{"a=1", "b=2", "c=3"}, 5, false},
			{change(joined, 6, member("d", "4")), true, []string{"a=1", "b=2", "c=3", "d=4"}, 6, false},
		}},
		{"a resync in pages replaces the state once complete", []step{
			{snap(5, false, member("a", "1")), true, []string{"a=1"}, 5, false},
			{cont(snap(9, true, member("y", "25"))), false, []string{"a=1"}, 5, false},
			{snap(9, true, member("z", "26")), true, []string{"y=25", "z=26"}, 9, true},
		}},
		{"a new snapshot drops the pages of an unfinished one", []step{
			{cont(snap(5, false, member("a", "1"))), false, nil, 0, false},
			{snap(7, false, member("b", "2")), true, []string{"b=2"}, 7, false},
		}},
		{"a first snapshot marked resync", []step{
			{snap(5, true, member("a", "1")), true, []string{"a=1"}, 5, true},
		}},
		{"unknown types are ignored", []step{
			{snap(5, false), true, nil, 5, false},
			{change(zkcoordv1.WatchGroupResponse_TYPE_UNSPECIFIED, 6, member("a", "1")), false, nil, 5, false},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := groupView{group: "g"}
			for i, st := range tc.steps {
				got, ok := v.apply(st.msg)
				if ok != st.emitted {
					t.Fatalf("step %d: emitted = %v, want %v", i, ok, st.emitted)
				}
				if !ok {
					got = GroupState{Members: v.members, Revision: v.rev}
				} else if got.Event != st.msg || got.Group != "g" || got.Events[len(got.Events)-1] != st.msg {
					t.Fatalf("step %d: state has event %v, group %q", i, got.Event, got.Group)
				}
				if vs := values(got); !slices.Equal(vs, st.members) || got.Revision != st.rev || got.Resync != st.resync {
					t.Fatalf("step %d: got %v rev %d resync %v, want %v rev %d resync %v",
						i, vs, got.Revision, got.Resync, st.members, st.rev, st.resync)
				}
			}
		})
	}
}

// TestGroupViewEvents: a state carries the messages of its revision, in
// order, and only those.
func TestGroupViewEvents(t *testing.T) {
	v := groupView{group: "g"}
	s0 := snap(5, false, member("a", "1"))
	msgs := []*zkcoordv1.WatchGroupResponse{
		cont(change(left, 6, member("a", "1"))),
		cont(change(joined, 6, member("b", "2"))),
		change(joined, 6, member("c", "3")),
	}
	first, _ := v.apply(s0)
	if len(first.Events) != 1 || first.Events[0] != s0 {
		t.Fatalf("snapshot state's events = %v", first.Events)
	}
	var got GroupState
	for _, m := range msgs {
		got, _ = v.apply(m)
	}
	if !slices.Equal(got.Events, msgs) || got.Revision != 6 || !slices.Equal(values(got), []string{"b=2", "c=3"}) {
		t.Fatalf("state = %v rev %d events %v", values(got), got.Revision, got.Events)
	}
	last := change(left, 7, member("b", "2"))
	if s, _ := v.apply(last); len(s.Events) != 1 || s.Events[0] != last {
		t.Fatalf("next revision's events = %v", s.Events)
	}
}

func TestGroupViewStatesAreImmutable(t *testing.T) {
	v := groupView{group: "g"}
	first, _ := v.apply(snap(1, false, member("a", "1")))
	second, _ := v.apply(change(joined, 2, member("b", "2")))
	v.apply(cont(change(left, 3, member("a", "1"))))
	v.apply(change(left, 3, member("b", "2")))
	if got := values(first); !slices.Equal(got, []string{"a=1"}) {
		t.Fatalf("an earlier state changed: %v", got)
	}
	if got := values(second); !slices.Equal(got, []string{"a=1", "b=2"}) {
		t.Fatalf("an earlier state changed: %v", got)
	}
}

// recvState receives the next state of a watch.
func recvState(t *testing.T, ch <-chan GroupState) GroupState {
	t.Helper()
	s, ok := recv(t, ch)
	if !ok {
		t.Fatal("watch channel closed")
	}
	return s
}

func TestWatchGroupReconnectsAndResumes(t *testing.T) {
	c, f := newFake(t)
	ctx, cancel := context.WithCancel(t.Context())
	ch := c.WatchGroup(ctx, "g")

	w := next(t, f.watches)
	if w.req.GetGroup() != "g" || w.req.GetStartRevision() != 0 {
		t.Fatalf("first request = %v, want group g from a snapshot", w.req)
	}
	w.send(t, snap(5, false, member("a", "1")))
	if s := recvState(t, ch); !slices.Equal(values(s), []string{"a=1"}) || s.Revision != 5 || s.Resync {
		t.Fatalf("first state = %v rev %d resync %v", values(s), s.Revision, s.Resync)
	}
	w.send(t, change(joined, 6, member("b", "2")))
	if s := recvState(t, ch); !slices.Equal(values(s), []string{"a=1", "b=2"}) || s.Event.GetType() != joined {
		t.Fatalf("after join: %v (event %v)", values(s), s.Event)
	}

	// The gateway goes away; the watch resumes after revision 6.
	w.fail(t, status.Error(codes.Unavailable, "gateway restarting"))
	w = next(t, f.watches)
	if w.req.GetStartRevision() != 6 {
		t.Fatalf("resumed from %d, want 6", w.req.GetStartRevision())
	}
	w.send(t, change(left, 7, member("a", "1")))
	if s := recvState(t, ch); !slices.Equal(values(s), []string{"b=2"}) || s.Revision != 7 || s.Resync {
		t.Fatalf("after resume: %v rev %d resync %v", values(s), s.Revision, s.Resync)
	}

	// The stream breaks in the middle of revision 8: no state shows part of
	// it, and the watch resumes from 7, the last complete revision.
	w.send(t, cont(change(left, 8, member("b", "2"))))
	w.fail(t, status.Error(codes.Unavailable, "gateway restarting"))
	w = next(t, f.watches)
	if w.req.GetStartRevision() != 7 {
		t.Fatalf("resumed from %d after a partial revision, want 7", w.req.GetStartRevision())
	}
	w.send(t, cont(change(left, 8, member("b", "2"))))
	w.send(t, change(joined, 8, member("d", "4")))
	if s := recvState(t, ch); !slices.Equal(values(s), []string{"d=4"}) || s.Revision != 8 || len(s.Events) != 2 {
		t.Fatalf("after the resumed revision: %v rev %d, %d events", values(s), s.Revision, len(s.Events))
	}

	// A slow consumer's stream is ended; the gateway cannot resume, resyncs.
	w.fail(t, status.Error(codes.ResourceExhausted, "consumer too slow"))
	w = next(t, f.watches)
	if w.req.GetStartRevision() != 8 {
		t.Fatalf("resumed from %d, want 8", w.req.GetStartRevision())
	}
	w.send(t, snap(12, true, member("c", "3")))
	if s := recvState(t, ch); !slices.Equal(values(s), []string{"c=3"}) || s.Revision != 12 || !s.Resync {
		t.Fatalf("after resync: %v rev %d resync %v", values(s), s.Revision, s.Resync)
	}

	cancel()
	w.wait(t) // the stream is closed
	if _, ok := recv(t, ch); ok {
		t.Fatal("channel not closed after cancel")
	}
}

func TestWatchGroupRefused(t *testing.T) {
	c, f := newFake(t)
	ch := c.WatchGroup(t.Context(), ".bad")
	next(t, f.watches).fail(t, status.Error(codes.InvalidArgument, "bad group name"))
	s := recvState(t, ch)
	if Code(s.Err) != codes.InvalidArgument {
		t.Fatalf("last state's Err = %v, want InvalidArgument", s.Err)
	}
	if _, ok := recv(t, ch); ok {
		t.Fatal("channel not closed after the refusal")
	}
}

func TestWatchGroupSeq(t *testing.T) {
	c, f := newFake(t)
	var w *script[*zkcoordv1.WatchGroupRequest, *zkcoordv1.WatchGroupResponse]
	feeder := make(chan struct{})
	go func() { // plays the gateway; reports through w and feeder
		defer close(feeder)
		select {
		case w = <-f.watches:
		case <-timeAfter():
			return
		}
		select {
		case w.out <- snap(1, false, member("a", "1")):
		case <-timeAfter():
			return
		}
		select {
		case w.out <- change(joined, 2, member("b", "2")):
		case <-timeAfter():
		}
	}()
	var got [][]string
	for s, err := range c.WatchGroupSeq(t.Context(), "g") {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, values(s))
		if len(got) == 2 {
			break
		}
	}
	<-feeder
	if w == nil || len(got) != 2 || !slices.Equal(got[1], []string{"a=1", "b=2"}) {
		t.Fatalf("got %v", got)
	}
	w.wait(t) // breaking the loop closed the stream

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, err := range c.WatchGroupSeq(ctx, "g") {
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error on a cancelled context = %v", err)
		}
	}
}
