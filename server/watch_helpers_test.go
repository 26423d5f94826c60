package server_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

// muxRecorder reads a Watch stream on a goroutine of its own (it ends with
// the stream) and keeps each watch's messages, by watch ID, in order.
type muxRecorder struct {
	stream grpc.BidiStreamingClient[pb.WatchRequest, pb.WatchResponse]

	mu      sync.Mutex
	by      map[int64][]*pb.WatchResponse
	err     error         // the stream's end
	changed chan struct{} // closed and replaced at every message
}

func openMux(t *testing.T, ctx context.Context, reg pb.RegistryServiceClient) *muxRecorder {
	t.Helper()
	s, err := reg.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r := &muxRecorder{stream: s, by: map[int64][]*pb.WatchResponse{}, changed: make(chan struct{})}
	go func() {
		for {
			m, err := s.Recv()
			r.mu.Lock()
			if err != nil {
				r.err = err
			} else {
				r.by[m.GetWatchId()] = append(r.by[m.GetWatchId()], m)
			}
			close(r.changed)
			r.changed = make(chan struct{})
			r.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return r
}

func (r *muxRecorder) create(t *testing.T, id int64, group string, start int64) {
	t.Helper()
	if err := r.stream.Send(&pb.WatchRequest{Request: &pb.WatchRequest_Create{Create: &pb.WatchCreateRequest{
		WatchId: id, Group: group, StartRevision: start}}}); err != nil {
		t.Fatal(err)
	}
}

func (r *muxRecorder) cancel(t *testing.T, id int64) {
	t.Helper()
	if err := r.stream.Send(&pb.WatchRequest{Request: &pb.WatchRequest_Cancel{Cancel: &pb.WatchCancelRequest{WatchId: id}}}); err != nil {
		t.Fatal(err)
	}
}

// wait waits, up to 20 s, until ok holds of the messages received (by
// watch ID) and the stream's end so far.
func (r *muxRecorder) wait(t *testing.T, what string, ok func(by map[int64][]*pb.WatchResponse, err error) bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		r.mu.Lock()
		done, ch := ok(r.by, r.err), r.changed
		by, err := fmt.Sprint(r.by), r.err
		r.mu.Unlock()
		if done {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("waiting for %s: got %s, stream end %v", what, by, err)
		}
	}
}

// messages returns a copy of watch id's messages so far.
func (r *muxRecorder) messages(id int64) []*pb.WatchResponse {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*pb.WatchResponse(nil), r.by[id]...)
}

// events are the watch's events (snapshot, joined, left, updated).
func events(ms []*pb.WatchResponse) []*pb.WatchGroupResponse {
	var out []*pb.WatchGroupResponse
	for _, m := range ms {
		if m.GetEvent() != nil {
			out = append(out, m.GetEvent())
		}
	}
	return out
}

// reachedRev: the watch's events include revision rev, complete (more
// false).
func reachedRev(ms []*pb.WatchResponse, rev int64) bool {
	for _, e := range events(ms) {
		if e.GetRevision() >= rev && !e.GetMore() {
			return true
		}
	}
	return false
}

// canceledWith returns the watch's canceled message's code, and whether
// there is one.
func canceledWith(ms []*pb.WatchResponse) (codes.Code, bool) {
	for _, m := range ms {
		if m.GetCanceled() {
			return codes.Code(m.GetCancelCode()), true
		}
	}
	return 0, false
}

// sameDelivery checks a multiplexed watch's messages against a reference
// (a WatchGroup stream of the same group, which the chaos run checks
// against ZooKeeper's journal): the watch starts with created, then a
// snapshot; after the later of the two snapshots, both carry the same
// messages, in the same order, with the same more flags, up to the last
// revision both reached; nothing follows canceled. A lost, duplicated,
// reordered or regrouped message fails it.
func sameDelivery(got []*pb.WatchResponse, ref []*pb.WatchGroupResponse) error {
	if len(got) == 0 || !got[0].GetCreated() || got[0].GetEvent() != nil {
		return fmt.Errorf("first message %v, want created alone", firstOf(got))
	}
	for i, m := range got {
		if m.GetCanceled() && i != len(got)-1 {
			return fmt.Errorf("message %d after canceled: %v", i+1, got[i+1])
		}
	}
	evs := events(got)
	if len(evs) == 0 || evs[0].GetType() != pb.WatchGroupResponse_TYPE_SNAPSHOT {
		return fmt.Errorf("first event %v, want a snapshot", firstOf(evs))
	}
	if len(ref) == 0 || ref[0].GetType() != pb.WatchGroupResponse_TYPE_SNAPSHOT {
		return fmt.Errorf("reference starts with %v, not a snapshot", firstOf(ref))
	}
	from := max(evs[0].GetRevision(), ref[0].GetRevision())
	after := func(es []*pb.WatchGroupResponse) []*pb.WatchGroupResponse {
		var out []*pb.WatchGroupResponse
		for _, e := range es[1:] {
			if e.GetRevision() > from {
				out = append(out, e)
			}
		}
		return out
	}
	a, b := after(evs), after(ref)
	upto := min(lastRev(a), lastRev(b))
	for i := 0; ; i++ {
		ea, eb := at(a, i, upto), at(b, i, upto)
		if ea == nil && eb == nil {
			return nil
		}
		if !proto.Equal(ea, eb) {
			return fmt.Errorf("event %d after revision %d: got %v, want %v", i, from, ea, eb)
		}
	}
}

func firstOf[T any](s []*T) *T {
	if len(s) == 0 {
		return nil
	}
	return s[0]
}

func lastRev(es []*pb.WatchGroupResponse) int64 {
	if len(es) == 0 {
		return 0
	}
	return es[len(es)-1].GetRevision()
}

// at is es[i] if its revision is at most upto, else nil.
func at(es []*pb.WatchGroupResponse, i int, upto int64) *pb.WatchGroupResponse {
	if i >= len(es) || es[i].GetRevision() > upto {
		return nil
	}
	return es[i]
}

// refWatch opens a WatchGroup stream of group and records its messages on
// a goroutine that ends with the stream.
func refWatch(t *testing.T, ctx context.Context, reg pb.RegistryServiceClient, group string) func() []*pb.WatchGroupResponse {
	t.Helper()
	s, err := reg.WatchGroup(ctx, &pb.WatchGroupRequest{Group: group})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []*pb.WatchGroupResponse
	go func() {
		for {
			m, err := s.Recv()
			if err != nil {
				return
			}
			mu.Lock()
			got = append(got, m)
			mu.Unlock()
		}
	}()
	return func() []*pb.WatchGroupResponse {
		mu.Lock()
		defer mu.Unlock()
		return append([]*pb.WatchGroupResponse(nil), got...)
	}
}

// TestSameDeliveryCatchesBrokenStreams feeds sameDelivery broken copies
// of a good delivery: each must fail it.
func TestSameDeliveryCatchesBrokenStreams(t *testing.T) {
	ev := func(typ pb.WatchGroupResponse_Type, rev int64, id string, more bool) *pb.WatchGroupResponse {
		return &pb.WatchGroupResponse{Type: typ, Revision: rev, Member: &pb.Member{Id: id}, More: more}
	}
	snap := &pb.WatchGroupResponse{Type: pb.WatchGroupResponse_TYPE_SNAPSHOT, Revision: 10}
	ref := []*pb.WatchGroupResponse{snap,
		ev(pb.WatchGroupResponse_TYPE_JOINED, 11, "a", false),
		ev(pb.WatchGroupResponse_TYPE_LEFT, 12, "a", true), ev(pb.WatchGroupResponse_TYPE_LEFT, 12, "b", false),
		ev(pb.WatchGroupResponse_TYPE_JOINED, 13, "c", false)}
	wrap := func(es ...*pb.WatchGroupResponse) []*pb.WatchResponse {
		out := []*pb.WatchResponse{{WatchId: 1, Created: true}}
		for _, e := range es {
			out = append(out, &pb.WatchResponse{WatchId: 1, Event: e})
		}
		return out
	}
	if err := sameDelivery(wrap(ref...), ref); err != nil {
		t.Fatalf("a good delivery fails: %v", err)
	}
	canceled := append(wrap(ref...), &pb.WatchResponse{WatchId: 1, Canceled: true})
	if err := sameDelivery(canceled, ref); err != nil {
		t.Fatalf("a good delivery ending canceled fails: %v", err)
	}
	broken := map[string][]*pb.WatchResponse{
		"lost":        wrap(snap, ref[1], ref[3], ref[4]),
		"duplicated":  wrap(snap, ref[1], ref[1], ref[2], ref[3], ref[4]),
		"reordered":   wrap(snap, ref[1], ref[3], ref[2], ref[4]),
		"regrouped":   wrap(snap, ref[1], ev(pb.WatchGroupResponse_TYPE_LEFT, 12, "a", false), ref[3], ref[4]),
		"no created":  wrap(ref...)[1:],
		"no snapshot": wrap(ref[1:]...),
		"after canceled": append(append(wrap(ref[:4]...), &pb.WatchResponse{WatchId: 1, Canceled: true}),
			&pb.WatchResponse{WatchId: 1, Event: ref[4]}),
	}
	for name, got := range broken {
		if err := sameDelivery(got, ref); err == nil {
			t.Errorf("%s: sameDelivery passed it", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}
