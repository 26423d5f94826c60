package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/testing/testenv"
)

// replica is a test replica with a client connection.
type replica struct {
	*testenv.Replica
	cc *grpc.ClientConn
}

func startReplica(t *testing.T, root, id string) *replica {
	t.Helper()
	r := testenv.StartReplica(t, root, id)
	cc, err := grpc.NewClient(r.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return &replica{r, cc}
}

// TestReplicasShareLeases: a lease granted on one replica is kept alive
// through another (forwarded, no handoff), used through another (handed
// over), and survives the drain of the replica that owned it: its member
// never leaves and its leader keeps the term (same token) after resuming
// the campaign on the other replica.
func TestReplicasShareLeases(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	root := fmt.Sprintf("/%s-%d", name(t), time.Now().UnixNano())
	a := startReplica(t, root, "a")
	b := startReplica(t, root, "b")
	group, election := "svc", "boss"

	la := pb.NewLeaseServiceClient(a.cc)
	g, err := la.Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(3 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	regA := pb.NewRegistryServiceClient(a.cc)
	if _, err := regA.Register(ctx, &pb.RegisterRequest{Group: group, MemberId: "m1", Value: "v", LeaseId: g.LeaseId}); err != nil {
		t.Fatal(err)
	}
	watch, err := pb.NewRegistryServiceClient(b.cc).WatchGroup(ctx, &pb.WatchGroupRequest{Group: group})
	if err != nil {
		t.Fatal(err)
	}
	if snap, err := watch.Recv(); err != nil || len(snap.Members) != 1 {
		t.Fatalf("snapshot on b = %v, %v", snap, err)
	}
	events := make(chan *pb.WatchGroupResponse, 16)
	go func() {
		for {
			ev, err := watch.Recv()
			if err != nil {
				close(events)
				return
			}
			events <- ev
		}
	}()
	campA, err := pb.NewElectionServiceClient(a.cc).Campaign(ctx, &pb.CampaignRequest{Election: election, Value: "me", LeaseId: g.LeaseId})
	if err != nil {
		t.Fatal(err)
	}
	elected, err := campA.Recv()
	if err != nil || elected.Status != pb.CampaignResponse_STATUS_ELECTED {
		t.Fatalf("campaign on a: %v, %v", elected, err)
	}

	// Keepalives through b reach a, the owner.
	lb := pb.NewLeaseServiceClient(b.cc)
	if _, err := lb.KeepAlive(ctx, &pb.KeepAliveRequest{LeaseId: g.LeaseId}); err != nil {
		t.Fatalf("KeepAlive through b: %v", err)
	}
	if st, _ := pb.NewStatusServiceClient(b.cc).GetStatus(ctx, &pb.GetStatusRequest{}); st.Leases != 0 {
		t.Fatalf("b took the lease on a keepalive (%d leases)", st.Leases)
	}

	// The client keeps its lease alive through b while a drains and stops.
	done := make(chan struct{})
	kept := make(chan error, 1)
	go func() {
		tick := time.NewTicker(300 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				kept <- nil
				return
			case <-tick.C:
				if _, err := lb.KeepAlive(ctx, &pb.KeepAliveRequest{LeaseId: g.LeaseId}); err != nil {
					kept <- err
					return
				}
			}
		}
	}()
	a.Stop()
	// a's campaign stream ended; the client resumes its candidacy on b.
	for {
		if _, err := campA.Recv(); err != nil {
			break
		}
	}
	campB, err := pb.NewElectionServiceClient(b.cc).Campaign(ctx, &pb.CampaignRequest{Election: election, Value: "me", LeaseId: g.LeaseId})
	if err != nil {
		t.Fatal(err)
	}
	resumed, err := campB.Recv()
	if err != nil || resumed.Status != pb.CampaignResponse_STATUS_ELECTED || resumed.FencingToken != elected.FencingToken {
		t.Fatalf("resumed campaign on b = %v, %v (token before %d)", resumed, err, elected.FencingToken)
	}
	// Outlive the lease's TTL on b alone.
	deadline := time.After(4 * time.Second)
	for waiting := true; waiting; {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("watch on b ended")
			}
			t.Fatalf("event during the drain: %v", ev)
		case <-deadline:
			waiting = false
		}
	}
	close(done)
	if err := <-kept; err != nil {
		t.Fatalf("keepalive through b during a's drain: %v", err)
	}
	lk, err := pb.NewRegistryServiceClient(b.cc).Lookup(ctx, &pb.LookupRequest{Group: group, Consistency: pb.Consistency_CONSISTENCY_LINEARIZABLE})
	if err != nil || len(lk.Members) != 1 {
		t.Fatalf("member after a's drain: %v, %v", lk, err)
	}
	if st, _ := pb.NewStatusServiceClient(b.cc).GetStatus(ctx, &pb.GetStatusRequest{}); st.Leases != 1 {
		t.Fatalf("b holds %d leases after a's drain, want 1", st.Leases)
	}

	// Registering through a third replica hands the lease over to it.
	c := startReplica(t, root, "c")
	if _, err := pb.NewRegistryServiceClient(c.cc).Register(ctx, &pb.RegisterRequest{Group: group, MemberId: "m2", LeaseId: g.LeaseId}); err != nil {
		t.Fatalf("Register through c: %v", err)
	}
	for r, want := range map[*replica]int64{b: 0, c: 1} {
		if st, _ := pb.NewStatusServiceClient(r.cc).GetStatus(ctx, &pb.GetStatusRequest{}); st.Leases != want {
			t.Fatalf("replica %s holds %d leases, want %d", st.ReplicaId, st.Leases, want)
		}
	}
	gl, err := lb.GetLease(ctx, &pb.GetLeaseRequest{LeaseId: g.LeaseId})
	if err != nil || len(gl.Owned) != 3 {
		t.Fatalf("GetLease through b after the handover to c: %v, %v", gl, err)
	}
}

// TestRepeatedCallsThroughAnotherReplica: a Register that changes nothing
// (the same member, value and lease) and a repeated JoinBarrier, sent to
// the replica that does not own the lease, renew it there (forwarded) and
// answer with its expiry. They answered NOT_FOUND: the answer's expiry was
// read from the local replica only, which does not hold the lease (the
// chaos run's lease-early checker caught it: "register answered
// NOT_FOUND, yet a keepalive after it succeeded").
func TestRepeatedCallsThroughAnotherReplica(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	root := fmt.Sprintf("/%s-%d", name(t), time.Now().UnixNano())
	a := startReplica(t, root, "a")
	b := startReplica(t, root, "b")
	g, err := pb.NewLeaseServiceClient(a.cc).Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	reg := &pb.RegisterRequest{Group: "same", MemberId: "m1", Value: "v", LeaseId: g.LeaseId}
	if _, err := pb.NewRegistryServiceClient(a.cc).Register(ctx, reg); err != nil {
		t.Fatal(err)
	}
	r, err := pb.NewRegistryServiceClient(b.cc).Register(ctx, reg)
	if err != nil || r.GetLeaseExpiresAt() == nil || time.Until(r.GetLeaseExpiresAt().AsTime()) < 50*time.Second {
		t.Fatalf("the same Register through the other replica: %v, %v", r, err)
	}
	join := &pb.JoinBarrierRequest{Barrier: "same", Threshold: 3, ParticipantId: "p1", LeaseId: g.LeaseId}
	if _, err := pb.NewBarrierServiceClient(a.cc).JoinBarrier(ctx, join); err != nil {
		t.Fatal(err)
	}
	j, err := pb.NewBarrierServiceClient(b.cc).JoinBarrier(ctx, join)
	if err != nil || j.GetLeaseExpiresAt() == nil || j.GetArrived() != 1 {
		t.Fatalf("the same JoinBarrier through the other replica: %v, %v", j, err)
	}
}
