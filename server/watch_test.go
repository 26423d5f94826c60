package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/registry"
	"github.com/zkcoord/zkcoord/internal/testing/testenv"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/server"
)

// TestWatchManyOnOneStream: one Watch stream holds watches of two groups,
// one of them twice (a client's ID and a gateway-chosen one); each
// delivers exactly what a WatchGroup stream of its group delivers (a
// lease's end: two members leaving in one revision, with more), in order.
// A bad group name and an ID in use refuse only their create; a canceled
// watch says so and gets nothing more while the others go on.
func TestWatchManyOnOneStream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	reg := pb.NewRegistryServiceClient(testenv.Conn(t))
	g1, g2 := name(t)+".one", name(t)+".two"
	ref1, ref2 := refWatch(t, ctx, reg, g1), refWatch(t, ctx, reg, g2)
	r := openMux(t, ctx, reg)
	r.create(t, 1, g1, 0)
	r.create(t, 2, g2, 0)
	r.create(t, 0, g1, 0)         // the gateway chooses an ID
	r.create(t, 9, "bad/name", 0) // refused alone
	r.create(t, 2, g1, 0)         // ID in use: refused alone
	r.create(t, -1, g1, 0)        // refused alone
	var chosen int64
	r.wait(t, "three created, three refusals", func(by map[int64][]*pb.WatchResponse, _ error) bool {
		chosen = 0
		for id, ms := range by {
			if id != 1 && id != 2 && len(ms) > 0 && ms[0].GetCreated() {
				chosen = id
			}
		}
		_, bad := canceledWith(by[9])
		_, neg := canceledWith(by[-1])
		return chosen != 0 && len(by[1]) > 1 && len(by[2]) > 1 && bad && neg && len(by[2]) >= 3
	})
	for id, want := range map[int64]codes.Code{9: codes.InvalidArgument, -1: codes.InvalidArgument} {
		if c, _ := canceledWith(r.messages(id)); c != want || r.messages(id)[0].GetCreated() {
			t.Errorf("watch %d: %v, want canceled alone with %v", id, r.messages(id), want)
		}
	}
	if c, ok := canceledWith(r.messages(2)); !ok || c != codes.AlreadyExists {
		t.Errorf("watch 2 twice: %v, want ALREADY_EXISTS for the second create", r.messages(2))
	}

	lease, err := pb.NewLeaseServiceClient(testenv.Conn(t)).Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	put := func(group, id, v string) int64 {
		resp, err := reg.Register(ctx, &pb.RegisterRequest{Group: group, MemberId: id, Value: v, LeaseId: lease.LeaseId})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Revision
	}
	put(g1, "a", "1")
	put(g1, "b", "1")
	put(g2, "c", "1")
	put(g1, "a", "2")
	if _, err := reg.Deregister(ctx, &pb.DeregisterRequest{Group: g2, MemberId: "c", LeaseId: lease.LeaseId}); err != nil {
		t.Fatal(err)
	}
	put(g2, "d", "1")
	rv, err := pb.NewLeaseServiceClient(testenv.Conn(t)).Revoke(ctx, &pb.RevokeRequest{LeaseId: lease.LeaseId})
	if err != nil {
		t.Fatal(err)
	}
	r.wait(t, "the lease's end on every watch", func(by map[int64][]*pb.WatchResponse, _ error) bool {
		return reachedRev(by[1], rv.Revision) && reachedRev(by[chosen], rv.Revision) && reachedRev(by[2], rv.Revision)
	})
	waitRef := func(ref func() []*pb.WatchGroupResponse) []*pb.WatchGroupResponse {
		deadline := time.Now().Add(20 * time.Second)
		for !reachedRevRef(ref(), rv.Revision) {
			if time.Now().After(deadline) {
				t.Fatalf("the reference watch stopped at %v", ref())
			}
			time.Sleep(10 * time.Millisecond) // polls a reference stream: orders nothing
		}
		return ref()
	}
	want1, want2 := waitRef(ref1), waitRef(ref2)
	for id, want := range map[int64][]*pb.WatchGroupResponse{1: want1, chosen: want1, 2: want2} {
		got := r.messages(id)
		if id == 2 { // the refusal of the second create with ID 2 is interleaved: drop it
			got = dropCanceled(got)
		}
		if err := sameDelivery(got, want); err != nil {
			t.Errorf("watch %d: %v", id, err)
		}
	}

	r.cancel(t, 1)
	r.wait(t, "watch 1 canceled", func(by map[int64][]*pb.WatchResponse, _ error) bool {
		_, ok := canceledWith(by[1])
		return ok
	})
	rev := put2(t, ctx, reg, g1)
	r.wait(t, "the other watch of the group", func(by map[int64][]*pb.WatchResponse, _ error) bool {
		return reachedRev(by[chosen], rev)
	})
	if ms := r.messages(1); ms[len(ms)-1].GetCancelCode() != int32(codes.Canceled) || reachedRev(ms, rev) {
		t.Errorf("watch 1 after its cancel: %v", ms[len(ms)-1])
	}
	r.cancel(t, 77) // unknown: answered, changes nothing
	r.wait(t, "the cancel of an unknown watch", func(by map[int64][]*pb.WatchResponse, _ error) bool {
		_, ok := canceledWith(by[77])
		return ok
	})
}

func reachedRevRef(es []*pb.WatchGroupResponse, rev int64) bool {
	for _, e := range es {
		if e.GetRevision() >= rev && !e.GetMore() {
			return true
		}
	}
	return false
}

func dropCanceled(ms []*pb.WatchResponse) []*pb.WatchResponse {
	var out []*pb.WatchResponse
	for _, m := range ms {
		if !m.GetCanceled() {
			out = append(out, m)
		}
	}
	return out
}

// put2 registers a persistent member in group and returns the revision.
func put2(t *testing.T, ctx context.Context, reg pb.RegistryServiceClient, group string) int64 {
	t.Helper()
	resp, err := reg.Register(ctx, &pb.RegisterRequest{Group: group, MemberId: "p", Value: fmt.Sprint(time.Now().UnixNano()), Persistent: true})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Revision
}

// TestWatchSlowCutEndsOneWatch: a client that stops reading lets a busy
// group's watch fall a whole ring behind; the gateway cancels that watch
// (RESOURCE_EXHAUSTED: resume from its revision) and not the stream: the
// quiet group's watch on the same stream goes on, and the busy one resumes
// from its last complete revision (a resync snapshot, the ring having
// moved on). A resume within the ring gets the backlog, no snapshot.
func TestWatchSlowCutEndsOneWatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sess, lay := zktest.Session(t)
	addr := testenv.ServeAddr(t, sess, server.WithRoot(lay.Root), server.WithRegistryOptions(registry.WithHistory(8)))
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	// A small fixed window (no BDP growth): the gateway's sends block soon
	// after the client stops reading.
	slow, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	reg := pb.NewRegistryServiceClient(cc)
	busy, quiet := "busy", "quiet"
	s, err := pb.NewRegistryServiceClient(slow).Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for id, g := range map[int64]string{1: busy, 2: quiet} {
		if err := s.Send(&pb.WatchRequest{Request: &pb.WatchRequest_Create{Create: &pb.WatchCreateRequest{WatchId: id, Group: g}}}); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[int64]int{}
	for seen[1] < 2 || seen[2] < 2 { // created and snapshot of each
		m, err := s.Recv()
		if err != nil {
			t.Fatal(err)
		}
		seen[m.GetWatchId()]++
	}
	big := strings.Repeat("x", 16<<10)
	var last int64
	for i := 0; i < 64; i++ { // 1 MiB of events: far past the window and the ring
		resp, err := reg.Register(ctx, &pb.RegisterRequest{Group: busy, MemberId: "m", Value: fmt.Sprint(i, big), Persistent: true})
		if err != nil {
			t.Fatal(err)
		}
		last = resp.Revision
	}
	quietRev := put2(t, ctx, reg, quiet)
	var resumeFrom int64
	var cut, quietSeen bool
	for !cut || !quietSeen {
		m, err := s.Recv()
		if err != nil {
			t.Fatalf("the stream ended: %v", err)
		}
		switch {
		case m.GetWatchId() == 1 && m.GetCanceled():
			if codes.Code(m.GetCancelCode()) != codes.ResourceExhausted {
				t.Fatalf("busy watch canceled with %v, want RESOURCE_EXHAUSTED", m)
			}
			cut = true
			t.Logf("busy watch cut after revision %d (last %d): %s", resumeFrom, last, m.GetCancelReason())
		case m.GetWatchId() == 1:
			if cut {
				t.Fatalf("a message after the cut: %v", m)
			}
			if !m.GetEvent().GetMore() {
				resumeFrom = m.GetEvent().GetRevision()
			}
		case m.GetWatchId() == 2 && m.GetEvent().GetRevision() == quietRev:
			quietSeen = true
		}
	}
	if resumeFrom >= last {
		t.Fatalf("the busy watch got every event (to %d) and was still cut", resumeFrom)
	}
	// Resume the busy watch, same ID: the ring moved on, so a resync.
	if err := s.Send(&pb.WatchRequest{Request: &pb.WatchRequest_Create{Create: &pb.WatchCreateRequest{WatchId: 1, Group: busy, StartRevision: resumeFrom}}}); err != nil {
		t.Fatal(err)
	}
	for m := recvWatch(t, s, 1); ; m = recvWatch(t, s, 1) {
		if e := m.GetEvent(); e != nil {
			if e.GetType() != pb.WatchGroupResponse_TYPE_SNAPSHOT || !e.GetResync() || e.GetRevision() < last {
				t.Fatalf("resumed busy watch starts with %v, want a resync snapshot at %d or later", e, last)
			}
			break
		}
	}
	// Resume within the ring: the backlog, no snapshot.
	next := put2(t, ctx, reg, busy)
	if err := s.Send(&pb.WatchRequest{Request: &pb.WatchRequest_Create{Create: &pb.WatchCreateRequest{WatchId: 3, Group: busy, StartRevision: last}}}); err != nil {
		t.Fatal(err)
	}
	if m := recvWatch(t, s, 3); !m.GetCreated() {
		t.Fatalf("resumed watch 3: %v, want created", m)
	}
	if m := recvWatch(t, s, 3); m.GetEvent().GetType() != pb.WatchGroupResponse_TYPE_JOINED || m.GetEvent().GetRevision() != next {
		t.Fatalf("resumed watch 3 from %d: %v, want the join at %d", last, m, next)
	}
}

// recvWatch returns the next message of watch id, skipping others'.
func recvWatch(t *testing.T, s grpc.BidiStreamingClient[pb.WatchRequest, pb.WatchResponse], id int64) *pb.WatchResponse {
	t.Helper()
	for {
		m, err := s.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if m.GetWatchId() == id {
			return m
		}
	}
}

// TestWatchStreamEndsAtDrain: a half-closed Watch stream keeps its
// watches; a draining replica ends its Watch streams (UNAVAILABLE: resume
// elsewhere), whatever they hold, and its stop does not wait for them.
func TestWatchStreamEndsAtDrain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	root := fmt.Sprintf("/%s-%d", name(t), time.Now().UnixNano())
	rep := startReplica(t, root, "draining")
	r := openMux(t, ctx, pb.NewRegistryServiceClient(rep.cc))
	r.create(t, 1, "a", 0)
	r.create(t, 2, "b", 0)
	r.wait(t, "two snapshots", func(by map[int64][]*pb.WatchResponse, _ error) bool {
		return len(events(by[1])) == 1 && len(events(by[2])) == 1
	})
	// Half-closed, the stream keeps its watches.
	if err := r.stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	rev := put2(t, ctx, pb.NewRegistryServiceClient(rep.cc), "a")
	r.wait(t, "a change after the half-close", func(by map[int64][]*pb.WatchResponse, _ error) bool {
		return reachedRev(by[1], rev)
	})
	stopped := make(chan struct{})
	go func() { rep.Stop(); close(stopped) }()
	r.wait(t, "the stream's end", func(_ map[int64][]*pb.WatchResponse, err error) bool { return err != nil })
	if c := code(r.err); c != codes.Unavailable {
		t.Errorf("stream ended with %v, want UNAVAILABLE", r.err)
	}
	select {
	case <-stopped:
	case <-ctx.Done():
		t.Fatal("the replica's stop did not end")
	}
}

// TestWatchCreateAuthorizedAlone: each create is checked against the
// principal's read right over its group and counted against its
// watched-groups limit; a refused create ends only itself, and a canceled
// watch gives its group back.
func TestWatchCreateAuthorizedAlone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dial, _ := authGateway(t)
	web := openMux(t, ctx, pb.NewRegistryServiceClient(dial("web-token-0123456789")))
	web.create(t, 1, "app.x", 0)
	web.create(t, 2, "jobs.y", 0) // web reads app. only
	web.create(t, 3, "app.z", 0)
	web.wait(t, "two created, one refused", func(by map[int64][]*pb.WatchResponse, _ error) bool {
		_, refused := canceledWith(by[2])
		return len(events(by[1])) == 1 && len(events(by[3])) == 1 && refused
	})
	if c, _ := canceledWith(web.messages(2)); c != codes.PermissionDenied {
		t.Errorf("watch of jobs.y: %v, want PERMISSION_DENIED", web.messages(2))
	}
	lim := openMux(t, ctx, pb.NewRegistryServiceClient(dial("limited-token-0123456789")))
	lim.create(t, 1, "lim.a", 0)
	lim.create(t, 2, "lim.a", 0) // the same group: counted once
	lim.create(t, 3, "lim.b", 0) // a second group: over the limit of 1
	lim.wait(t, "two created, one refused", func(by map[int64][]*pb.WatchResponse, _ error) bool {
		_, refused := canceledWith(by[3])
		return len(events(by[1])) == 1 && len(events(by[2])) == 1 && refused
	})
	if c, _ := canceledWith(lim.messages(3)); c != codes.ResourceExhausted {
		t.Errorf("watch of lim.b: %v, want RESOURCE_EXHAUSTED", lim.messages(3))
	}
	lim.cancel(t, 1)
	lim.cancel(t, 2)
	lim.wait(t, "both canceled", func(by map[int64][]*pb.WatchResponse, _ error) bool {
		_, a := canceledWith(by[1])
		_, b := canceledWith(by[2])
		return a && b
	})
	lim.create(t, 4, "lim.b", 0)
	lim.wait(t, "lim.b once lim.a is given back", func(by map[int64][]*pb.WatchResponse, _ error) bool {
		return len(events(by[4])) == 1
	})
}
