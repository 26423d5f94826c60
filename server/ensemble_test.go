package server_test

import (
	"context"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/testing/testenv"
	"github.com/zkcoord/zkcoord/internal/zkserver"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// TestEnsembleRidesOutServerLoss: a gateway on a three-node ensemble, with a
// chroot in its connect string, keeps its session, members and leader when
// the ZooKeeper server it is connected to is killed.
func TestEnsembleRidesOutServerLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node ensemble")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ens, err := zkserver.StartEnsemble(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ens.Stop() })
	sess, err := zkx.Dial(ctx, ens.ConnectString()+"/apps/zkcoord-test", zkx.WithSessionTimeout(6*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	cc := testenv.Serve(t, sess)
	reg, el := pb.NewRegistryServiceClient(cc), pb.NewElectionServiceClient(cc)
	status := pb.NewStatusServiceClient(cc)

	r, err := reg.Register(ctx, &pb.RegisterRequest{Group: "svc", MemberId: "m1", Value: "v", Ttl: durationpb.New(30 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	camp, err := el.Campaign(ctx, &pb.CampaignRequest{Election: "e", Value: "me", LeaseId: r.LeaseId})
	if err != nil {
		t.Fatal(err)
	}
	elected, err := camp.Recv()
	if err != nil || elected.Status != pb.CampaignResponse_STATUS_ELECTED {
		t.Fatalf("campaign: %v, %v", elected, err)
	}
	before, _ := status.GetStatus(ctx, &pb.GetStatusRequest{})
	if len(before.Servers) != 3 || before.Chroot != "/apps/zkcoord-test" {
		t.Fatalf("status = %v", before)
	}
	// The chroot is honoured: the namespace lives below it.
	if ok, _, _ := sess.Conn().Exists("/apps/zkcoord-test/zkcoord/groups/svc/members/m1"); !ok {
		t.Fatal("member not under the chroot")
	}

	// Kill the server this gateway talks to.
	for i, s := range ens.Servers {
		if s.Addr() == before.Server {
			t.Logf("killing ZooKeeper %d (%s)", i+1, s.Addr())
			ens.Kill(i)
		}
	}
	// The leader hears of the disconnection as JEOPARDY, then ELECTED again
	// with the same token; never LOST.
	jeopardy := false
	for {
		u, err := camp.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if u.Status == pb.CampaignResponse_STATUS_JEOPARDY {
			if u.JeopardyDeadline == nil || u.FencingToken != elected.FencingToken {
				t.Fatalf("jeopardy without deadline or token: %v", u)
			}
			jeopardy = true
			continue
		}
		if u.Status != pb.CampaignResponse_STATUS_ELECTED || u.FencingToken != elected.FencingToken {
			t.Fatalf("after server loss: %v", u)
		}
		break
	}
	if !jeopardy {
		t.Fatal("leader not told of the lost connection (no JEOPARDY)")
	}
	after, _ := status.GetStatus(ctx, &pb.GetStatusRequest{})
	if after.State != pb.ConnectionState_CONNECTION_STATE_CONNECTED || after.SessionId != before.SessionId ||
		after.Server == before.Server || after.SessionExpirations != 0 {
		t.Fatalf("status after server loss = %v (before %v)", after, before)
	}
	h, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || h.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v", h, err)
	}
	lk, err := reg.Lookup(ctx, &pb.LookupRequest{Group: "svc", Consistency: pb.Consistency_CONSISTENCY_LINEARIZABLE})
	if err != nil || len(lk.Members) != 1 {
		t.Fatalf("Lookup after server loss = %v, %v", lk, err)
	}
	if _, err := reg.Register(ctx, &pb.RegisterRequest{Group: "svc", MemberId: "m2", LeaseId: r.LeaseId}); err != nil {
		t.Fatalf("Register after server loss: %v", err)
	}
	t.Logf("session %s moved %s -> %s", before.SessionId, before.Server, after.Server)
}
