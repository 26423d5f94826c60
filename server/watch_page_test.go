package server_test

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

// checkBigWatch: on one Watch stream of a default client, a group of n
// members over 4 MiB is watched with pages (all n, several pages of one
// revision), while its watch without pages ends alone with
// RESOURCE_EXHAUSTED (sent whole, it would have ended the stream at the
// client, with every watch on it), and a small group's watch on the same
// stream goes on: it gets the change made after.
func checkBigWatch(t *testing.T, ctx context.Context, reg pb.RegistryServiceClient, big string, n int) {
	t.Helper()
	small := big + "-small"
	if _, err := reg.Register(ctx, &pb.RegisterRequest{Group: small, MemberId: "s0", Value: "v", Persistent: true}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := reg.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*pb.WatchCreateRequest{
		{WatchId: 1, Group: big},
		{WatchId: 2, Group: small},
		{WatchId: 3, Group: big, SnapshotPageSize: 50000},
	} {
		if err := st.Send(&pb.WatchRequest{Request: &pb.WatchRequest_Create{Create: c}}); err != nil {
			t.Fatal(err)
		}
	}
	var (
		ended, smallSnap, joined bool
		pages                    int
		rev                      int64
		members                  = map[string]bool{}
		pagedDone                bool
	)
	for !(ended && pagedDone && joined) {
		m, err := st.Recv()
		if err != nil {
			t.Fatalf("stream: %v (ended %v, paged %v, joined %v)", err, ended, pagedDone, joined)
		}
		ev := m.GetEvent()
		switch m.GetWatchId() {
		case 1:
			if ev != nil {
				t.Fatalf("watch without pages got a %v of %d bytes", ev.GetType(), len(ev.GetMembers()))
			}
			if m.GetCanceled() {
				if codes.Code(m.GetCancelCode()) != codes.ResourceExhausted {
					t.Fatalf("watch without pages ended with %v: %s", codes.Code(m.GetCancelCode()), m.GetCancelReason())
				}
				ended = true
			}
		case 3:
			if m.GetCanceled() {
				t.Fatalf("paged watch ended: %v %s", codes.Code(m.GetCancelCode()), m.GetCancelReason())
			}
			if ev == nil {
				continue
			}
			if ev.GetType() != pb.WatchGroupResponse_TYPE_SNAPSHOT || (pages > 0 && ev.GetRevision() != rev) {
				t.Fatalf("paged watch, page %d: %v at %d (first at %d)", pages, ev.GetType(), ev.GetRevision(), rev)
			}
			rev = ev.GetRevision()
			pages++
			for _, mb := range ev.GetMembers() {
				members[mb.GetId()] = true
			}
			if !ev.GetMore() {
				if len(members) != n || pages < 2 {
					t.Fatalf("paged watch: %d members in %d pages, want %d in several", len(members), pages, n)
				}
				pagedDone = true
			}
		case 2:
			switch {
			case m.GetCanceled():
				t.Fatalf("small group's watch ended: %s", m.GetCancelReason())
			case ev.GetType() == pb.WatchGroupResponse_TYPE_SNAPSHOT:
				smallSnap = true
				if _, err := reg.Register(ctx, &pb.RegisterRequest{Group: small, MemberId: "s1", Value: "v", Persistent: true}); err != nil {
					t.Fatal(err)
				}
			case ev.GetType() == pb.WatchGroupResponse_TYPE_JOINED && smallSnap:
				joined = ev.GetMember().GetId() == "s1"
			}
		}
	}
}
