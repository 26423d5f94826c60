package chaosrun_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

// TestGrantThenKeepAliveElsewhere grants a lease on one replica and at once
// keeps it alive on another, as a client's round robin does with a
// session's first keepalive. The second replica reads from its own
// ZooKeeper server, which may not have applied the grant yet: it answered
// NotFound (242 of 1500 pairs on a loaded machine), the client took the
// lease for lost, and a Campaign made with it ended six seconds later
// (the rolling-restart test's "election: lost"). Absence is now confirmed
// through the ensemble's leader before it is reported.
func TestGrantThenKeepAliveElsewhere(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an ensemble and replica processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rs := startCluster(ctx, t).Replicas()
	var ls []pb.LeaseServiceClient
	for _, r := range rs {
		ls = append(ls, pb.NewLeaseServiceClient(r.Conn()))
	}
	const pairs = 600
	notFound := 0
	for i := range pairs {
		a, b := ls[i%3], ls[(i+1)%3]
		g, err := a.Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(6 * time.Second)})
		if err != nil {
			t.Fatalf("grant on %s: %v", rs[i%3].ID, err)
		}
		_, err = b.KeepAlive(ctx, &pb.KeepAliveRequest{LeaseId: g.GetLeaseId()})
		switch status.Code(err) {
		case codes.OK:
		case codes.NotFound:
			notFound++
			t.Errorf("lease granted on %s a moment ago: KeepAlive on %s: %v", rs[i%3].ID, rs[(i+1)%3].ID, err)
		default:
			t.Fatalf("KeepAlive on %s: %v", rs[(i+1)%3].ID, err)
		}
		_, _ = b.Revoke(ctx, &pb.RevokeRequest{LeaseId: g.GetLeaseId()})
	}
	t.Logf("%d grant+keepalive pairs across replicas: %d NotFound", pairs, notFound)
}
