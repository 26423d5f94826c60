package server_test

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/testing/testenv"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/internal/zkx"
	"github.com/zkcoord/zkcoord/server"
)

// badNames are names no call may accept.
var badNames = []string{
	"", ".", "..", ".hidden", "a/b", "/", "/abs", "../up", "a\x00b", "\x00", "a~b", "~", " ", "a b", "tab\t",
	"new\nline", "é", "日本", "a*b", "a?b", "%2F", "a\\b", strings.Repeat("a", 129), "\x7f", "semi;colon",
	"quote\"", "zookeeper/quota",
}

// TestHostileRequests sends hundreds of malformed and oversized requests,
// and requests that act for a lease the caller does not hold, and checks
// each answer, then reads ZooKeeper's whole tree to check that nothing was
// created or left behind by any of them.
func TestHostileRequests(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// A gateway of its own: the tree is compared under its root, where no
	// other test's lease ends meanwhile.
	gsess, lay := zktest.Session(t)
	cc := dialAddr(t, testenv.ServeAddr(t, gsess, server.WithRoot(lay.Root)))
	reg, leases := pb.NewRegistryServiceClient(cc), pb.NewLeaseServiceClient(cc)
	el, bar := pb.NewElectionServiceClient(cc), pb.NewBarrierServiceClient(cc)

	// A legitimate owner, with a member, a candidacy and a barrier place.
	owner, err := leases.Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	defer leases.Revoke(context.Background(), &pb.RevokeRequest{LeaseId: owner.LeaseId})
	if _, err := reg.Register(ctx, &pb.RegisterRequest{Group: "hostile", MemberId: "m", Value: "v", LeaseId: owner.LeaseId}); err != nil {
		t.Fatal(err)
	}
	cctx, stopCampaign := context.WithCancel(ctx)
	defer stopCampaign()
	camp, err := el.Campaign(cctx, &pb.CampaignRequest{Election: "hostile", Value: "v", LeaseId: owner.LeaseId})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := camp.Recv(); err != nil {
		t.Fatal(err)
	}
	bctx, stopBarrier := context.WithCancel(ctx)
	defer stopBarrier()
	bs, err := bar.AwaitBarrier(bctx, &pb.AwaitBarrierRequest{Barrier: "hostile", Threshold: 5, ParticipantId: "p", LeaseId: owner.LeaseId})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bs.Recv(); err != nil {
		t.Fatal(err)
	}
	intruder, err := leases.Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	defer leases.Revoke(context.Background(), &pb.RevokeRequest{LeaseId: intruder.LeaseId})

	truth, err := zkx.Dial(ctx, testenv.ZooKeeper(t))
	if err != nil {
		t.Fatal(err)
	}
	defer truth.Close()
	before := tree(t, truth.Conn())

	type call struct {
		name  string
		do    func() error
		code  codes.Code
		field string // the BadRequest field violation expected ("" for none)
	}
	var calls []call
	unary := func(name string, code codes.Code, field string, do func() error) {
		calls = append(calls, call{name, do, code, field})
	}
	inv := codes.InvalidArgument
	unknownLease := strings.Repeat("0", 32)
	for _, n := range badNames {
		q := fmt.Sprintf("%q", n)
		unary("Register group "+q, inv, "group", func() error {
			_, err := reg.Register(ctx, &pb.RegisterRequest{Group: n, MemberId: "m1", Value: "v", Persistent: true})
			return err
		})
		unary("Register member "+q, inv, "member_id", func() error {
			if n == "" {
				return errSkip // an empty member id asks the gateway to pick one
			}
			_, err := reg.Register(ctx, &pb.RegisterRequest{Group: "hostile", MemberId: n, Value: "v", LeaseId: owner.LeaseId})
			return err
		})
		unary("Deregister group "+q, inv, "group", func() error {
			_, err := reg.Deregister(ctx, &pb.DeregisterRequest{Group: n, MemberId: "m", LeaseId: owner.LeaseId})
			return err
		})
		unary("Lookup group "+q, inv, "group", func() error {
			_, err := reg.Lookup(ctx, &pb.LookupRequest{Group: n})
			return err
		})
		unary("WatchGroup group "+q, inv, "group", func() error {
			return first(reg.WatchGroup(ctx, &pb.WatchGroupRequest{Group: n}))
		})
		unary("Campaign election "+q, inv, "election", func() error {
			return first(el.Campaign(ctx, &pb.CampaignRequest{Election: n, Value: "v", Ttl: durationpb.New(time.Minute)}))
		})
		unary("Leader election "+q, inv, "election", func() error {
			_, err := el.Leader(ctx, &pb.LeaderRequest{Election: n})
			return err
		})
		unary("AwaitBarrier barrier "+q, inv, "barrier", func() error {
			return first(bar.AwaitBarrier(ctx, &pb.AwaitBarrierRequest{Barrier: n, Threshold: 2, ParticipantId: "p1", Ttl: durationpb.New(time.Minute)}))
		})
		unary("AwaitBarrier participant "+q, inv, "participant_id", func() error {
			if n == "" {
				return errSkip // an empty participant id asks the gateway to pick one
			}
			return first(bar.AwaitBarrier(ctx, &pb.AwaitBarrierRequest{Barrier: "hostile2", Threshold: 2, ParticipantId: n, Ttl: durationpb.New(time.Minute)}))
		})
		unary("AwaitGroup group "+q, inv, "group", func() error {
			return first(bar.AwaitGroup(ctx, &pb.AwaitGroupRequest{Group: n, MinMembers: 2}))
		})
	}
	for _, id := range []string{strings.ToUpper(strings.Repeat("ab", 16)), strings.Repeat("a", 31), strings.Repeat("a", 33), strings.Repeat("g", 32), "../" + strings.Repeat("a", 29), strings.Repeat("a", 31) + "\x00"} {
		q := fmt.Sprintf("%q", id)
		unary("KeepAlive lease "+q, inv, "lease_id", func() error {
			_, err := leases.KeepAlive(ctx, &pb.KeepAliveRequest{LeaseId: id})
			return err
		})
		unary("Revoke lease "+q, inv, "lease_id", func() error {
			_, err := leases.Revoke(ctx, &pb.RevokeRequest{LeaseId: id})
			return err
		})
		unary("Register lease "+q, inv, "lease_id", func() error {
			_, err := reg.Register(ctx, &pb.RegisterRequest{Group: "hostile", MemberId: "x", LeaseId: id})
			return err
		})
		unary("Resign lease "+q, inv, "lease_id", func() error {
			_, err := el.Resign(ctx, &pb.ResignRequest{Election: "hostile", LeaseId: id})
			return err
		})
	}
	for _, d := range []*durationpb.Duration{{}, {Nanos: 999_999_999}, {Seconds: 86401}, {Seconds: -1}, {Seconds: 1, Nanos: -1}, {Seconds: 1 << 40}} {
		q := fmt.Sprintf("%v", d)
		unary("Grant ttl "+q, inv, "ttl", func() error {
			_, err := leases.Grant(ctx, &pb.GrantRequest{Ttl: d})
			return err
		})
		unary("Register ttl "+q, inv, "ttl", func() error {
			_, err := reg.Register(ctx, &pb.RegisterRequest{Group: "hostile", MemberId: "t", Ttl: d})
			return err
		})
	}
	for _, n := range []int32{0, -1, -1 << 31, 100001} {
		unary(fmt.Sprint("AwaitBarrier threshold ", n), inv, "threshold", func() error {
			return first(bar.AwaitBarrier(ctx, &pb.AwaitBarrierRequest{Barrier: "hostile3", Threshold: n, ParticipantId: "p", Ttl: durationpb.New(time.Minute)}))
		})
	}
	big := strings.Repeat("x", 64<<10+1)
	unary("Register value 64 KiB + 1", inv, "value", func() error {
		_, err := reg.Register(ctx, &pb.RegisterRequest{Group: "hostile", MemberId: "big", Value: big, LeaseId: owner.LeaseId})
		return err
	})
	unary("Campaign value 64 KiB + 1", inv, "value", func() error {
		return first(el.Campaign(ctx, &pb.CampaignRequest{Election: "hostile", Value: big, Ttl: durationpb.New(time.Minute)}))
	})
	many := map[string]string{}
	for i := range 65 {
		many[fmt.Sprint("k", i)] = "v"
	}
	unary("Register 65 metadata entries", inv, "metadata", func() error {
		_, err := reg.Register(ctx, &pb.RegisterRequest{Group: "hostile", MemberId: "md", Metadata: many, Persistent: true})
		return err
	})
	unary("Register 16 KiB + metadata", inv, "metadata", func() error {
		_, err := reg.Register(ctx, &pb.RegisterRequest{Group: "hostile", MemberId: "md", Metadata: map[string]string{"k": strings.Repeat("v", 16<<10)}, Persistent: true})
		return err
	})
	unary("Register metadata key with a space", inv, `metadata["a b"]`, func() error {
		_, err := reg.Register(ctx, &pb.RegisterRequest{Group: "hostile", MemberId: "md", Metadata: map[string]string{"a b": "v"}, Persistent: true})
		return err
	})
	unary("Register lease and persistent", inv, "persistent", func() error {
		_, err := reg.Register(ctx, &pb.RegisterRequest{Group: "hostile", MemberId: "both", LeaseId: owner.LeaseId, Persistent: true})
		return err
	})
	unary("Register without an owner", inv, "lease_id", func() error {
		_, err := reg.Register(ctx, &pb.RegisterRequest{Group: "hostile", MemberId: "none"})
		return err
	})

	// Acting for what another lease owns, or for a lease that does not exist.
	unary("Deregister another lease's member", codes.PermissionDenied, "", func() error {
		_, err := reg.Deregister(ctx, &pb.DeregisterRequest{Group: "hostile", MemberId: "m", LeaseId: intruder.LeaseId})
		return err
	})
	unary("Deregister a leased member without its lease", codes.PermissionDenied, "", func() error {
		_, err := reg.Deregister(ctx, &pb.DeregisterRequest{Group: "hostile", MemberId: "m"})
		return err
	})
	unary("Register over another lease's member", codes.AlreadyExists, "", func() error {
		_, err := reg.Register(ctx, &pb.RegisterRequest{Group: "hostile", MemberId: "m", Value: "stolen", LeaseId: intruder.LeaseId})
		return err
	})
	unary("Register persistent over a leased member", codes.AlreadyExists, "", func() error {
		_, err := reg.Register(ctx, &pb.RegisterRequest{Group: "hostile", MemberId: "m", Value: "stolen", Persistent: true})
		return err
	})
	unary("Resign with another lease", codes.NotFound, "", func() error {
		_, err := el.Resign(ctx, &pb.ResignRequest{Election: "hostile", LeaseId: intruder.LeaseId})
		return err
	})
	unary("LeaveBarrier with another lease", codes.PermissionDenied, "", func() error {
		_, err := bar.LeaveBarrier(ctx, &pb.LeaveBarrierRequest{Barrier: "hostile", ParticipantId: "p", LeaseId: intruder.LeaseId})
		return err
	})
	unary("AwaitBarrier as another's participant", codes.AlreadyExists, "", func() error {
		return first(bar.AwaitBarrier(ctx, &pb.AwaitBarrierRequest{Barrier: "hostile", Threshold: 5, ParticipantId: "p", LeaseId: intruder.LeaseId}))
	})
	unary("KeepAlive of an unknown lease", codes.NotFound, "", func() error {
		_, err := leases.KeepAlive(ctx, &pb.KeepAliveRequest{LeaseId: unknownLease})
		return err
	})
	unary("Revoke of an unknown lease", codes.NotFound, "", func() error {
		_, err := leases.Revoke(ctx, &pb.RevokeRequest{LeaseId: unknownLease})
		return err
	})
	unary("Register under an unknown lease", codes.NotFound, "", func() error {
		_, err := reg.Register(ctx, &pb.RegisterRequest{Group: "hostile", MemberId: "ghost", LeaseId: unknownLease})
		return err
	})
	unary("Campaign under an unknown lease", codes.NotFound, "", func() error {
		return first(el.Campaign(ctx, &pb.CampaignRequest{Election: "hostile", Value: "v", LeaseId: unknownLease}))
	})

	checked := 0
	for _, c := range calls {
		err := c.do()
		if err == errSkip {
			continue
		}
		checked++
		st := status.Convert(err)
		if st.Code() != c.code {
			t.Errorf("%s: %v, want %v", c.name, err, c.code)
			continue
		}
		if c.field == "" {
			continue
		}
		var fields []string
		for _, d := range st.Details() {
			if br, ok := d.(*errdetails.BadRequest); ok {
				for _, v := range br.GetFieldViolations() {
					fields = append(fields, v.GetField())
				}
			}
		}
		if !slices.Contains(fields, c.field) {
			t.Errorf("%s: violations name %q, want %q (%v)", c.name, fields, c.field, err)
		}
	}
	if checked < 300 {
		t.Errorf("only %d hostile calls checked", checked)
	}

	// ZooKeeper's tree is as before, and the owner still holds everything.
	after := tree(t, truth.Conn())
	if added, removed := diff(before, after); len(under(lay.Root, added)) > 0 || len(under(lay.Root, removed)) > 0 {
		t.Errorf("ZooKeeper's tree changed: added %v, removed %v", under(lay.Root, added), under(lay.Root, removed))
	}
	if _, err := reg.Lookup(ctx, &pb.LookupRequest{Group: "hostile", MemberId: "m", Consistency: pb.Consistency_CONSISTENCY_LINEARIZABLE}); err != nil {
		t.Errorf("the owner's member after the hostile calls: %v", err)
	}
	if l, err := el.Leader(ctx, &pb.LeaderRequest{Election: "hostile"}); err != nil || l.GetLeader().GetValue() != "v" {
		t.Errorf("the owner's leadership after the hostile calls: %v, %v", l, err)
	}
	t.Logf("%d hostile calls refused as expected; ZooKeeper's tree (%d znodes) unchanged", checked, len(after))
}

var errSkip = errors.New("skip")

// first opens a server stream and returns the error of its first message.
func first[T any](s grpc.ServerStreamingClient[T], err error) error {
	if err != nil {
		return err
	}
	_, err = s.Recv()
	return err
}

// tree lists every znode path except ZooKeeper's own /zookeeper and the
// insides of roots secured with credentials this client does not have.
func tree(t *testing.T, c *zk.Conn) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	var walk func(p string)
	walk = func(p string) {
		kids, _, err := c.Children(p)
		if err == zk.ErrNoNode || err == zk.ErrNoAuth { // gone, or another test's secured root
			return
		} else if err != nil {
			t.Fatal(err)
		}
		for _, k := range kids {
			child := path.Join(p, k)
			if child == "/zookeeper" {
				continue
			}
			out[child] = true
			walk(child)
		}
	}
	walk("/")
	return out
}

func diff(a, b map[string]bool) (added, removed []string) {
	for p := range b {
		if !a[p] {
			added = append(added, p)
		}
	}
	for p := range a {
		if !b[p] {
			removed = append(removed, p)
		}
	}
	slices.Sort(added)
	slices.Sort(removed)
	return added, removed
}
