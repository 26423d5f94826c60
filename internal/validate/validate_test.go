package validate

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"

	zkcoordv1 "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const lease = "0123456789abcdef0123456789abcdef"

func ttl(d time.Duration) *durationpb.Duration { return durationpb.New(d) }

// metadataOf returns n entries with keys k0..k(n-1).
func metadataOf(n int) map[string]string {
	md := make(map[string]string, n)
	for i := range n {
		md["k"+strconv.Itoa(i)] = "v"
	}
	return md
}

type testCase struct {
	name string
	msg  any
	// want lists the BadRequest field names, in order; nil for a valid msg.
	want []string
}

// cases covers every request type of zkcoord.v1, valid and invalid.
var cases = []testCase{
	// lease.proto
	{"Grant/ok", &zkcoordv1.GrantRequest{Ttl: ttl(10 * time.Second)}, nil},
	{"Grant/min", &zkcoordv1.GrantRequest{Ttl: ttl(MinTTL)}, nil},
	{"Grant/max", &zkcoordv1.GrantRequest{Ttl: ttl(MaxTTL)}, nil},
	{"Grant/no ttl", &zkcoordv1.GrantRequest{}, []string{"ttl"}},
	{"Grant/too short", &zkcoordv1.GrantRequest{Ttl: ttl(MinTTL - time.Millisecond)}, []string{"ttl"}},
	{"Grant/too long", &zkcoordv1.GrantRequest{Ttl: ttl(MaxTTL + time.Nanosecond)}, []string{"ttl"}},
	{"Grant/negative", &zkcoordv1.GrantRequest{Ttl: ttl(-10 * time.Second)}, []string{"ttl"}},
	{"Grant/nil", (*zkcoordv1.GrantRequest)(nil), []string{"ttl"}},
	{"Grant/malformed", &zkcoordv1.GrantRequest{Ttl: &durationpb.Duration{Seconds: 5, Nanos: -1}}, []string{"ttl"}},
	{"KeepAlive/ok", &zkcoordv1.KeepAliveRequest{LeaseId: lease}, nil},
	{"KeepAlive/empty", &zkcoordv1.KeepAliveRequest{}, []string{"lease_id"}},
	{"KeepAlive/upper", &zkcoordv1.KeepAliveRequest{LeaseId: strings.ToUpper(lease)}, []string{"lease_id"}},
	{"KeepAlive/short", &zkcoordv1.KeepAliveRequest{LeaseId: lease[1:]}, []string{"lease_id"}},
	{"KeepAlive/long", &zkcoordv1.KeepAliveRequest{LeaseId: lease + "0"}, []string{"lease_id"}},
	{"KeepAlive/not hex", &zkcoordv1.KeepAliveRequest{LeaseId: "g" + lease[1:]}, []string{"lease_id"}},
	{"KeepAliveStream/ok", &zkcoordv1.KeepAliveStreamRequest{LeaseId: lease}, nil},
	{"KeepAliveStream/empty", &zkcoordv1.KeepAliveStreamRequest{}, []string{"lease_id"}},
	{"Revoke/ok", &zkcoordv1.RevokeRequest{LeaseId: lease}, nil},
	{"Revoke/malformed", &zkcoordv1.RevokeRequest{LeaseId: "lease-1"}, []string{"lease_id"}},
	{"GetLease/ok", &zkcoordv1.GetLeaseRequest{LeaseId: lease}, nil},
	{"GetLease/empty", &zkcoordv1.GetLeaseRequest{}, []string{"lease_id"}},

	// registry.proto
	{"Register/lease", &zkcoordv1.RegisterRequest{Group: "api", LeaseId: lease}, nil},
	{"Register/ttl", &zkcoordv1.RegisterRequest{Group: "api", Ttl: ttl(30 * time.Second)}, nil},
	{"Register/persistent full", &zkcoordv1.RegisterRequest{
		Group: "Api-1_x.y:z@w=v", MemberId: "host-1:8080", Value: "10.0.0.7:8080",
		Metadata: map[string]string{"app/version": "1.2", "zone": "eu-1", "k:x.y_z-1": ""}, Persistent: true,
	}, nil},
	{"Register/name max", &zkcoordv1.RegisterRequest{Group: strings.Repeat("g", MaxNameLen), Persistent: true}, nil},
	{"Register/value max", &zkcoordv1.RegisterRequest{Group: "api", Value: strings.Repeat("x", MaxValueBytes), Persistent: true}, nil},
	{"Register/metadata max", &zkcoordv1.RegisterRequest{Group: "api", Metadata: metadataOf(MaxMetadataEntries), Persistent: true}, nil},
	{"Register/no group", &zkcoordv1.RegisterRequest{LeaseId: lease}, []string{"group"}},
	{"Register/group dot", &zkcoordv1.RegisterRequest{Group: ".", LeaseId: lease}, []string{"group"}},
	{"Register/group dotdot", &zkcoordv1.RegisterRequest{Group: "..", LeaseId: lease}, []string{"group"}},
	{"Register/group hidden", &zkcoordv1.RegisterRequest{Group: ".api", LeaseId: lease}, []string{"group"}},
	{"Register/group slash", &zkcoordv1.RegisterRequest{Group: "a/b", LeaseId: lease}, []string{"group"}},
	{"Register/group space", &zkcoordv1.RegisterRequest{Group: "a b", LeaseId: lease}, []string{"group"}},
	{"Register/group tilde", &zkcoordv1.RegisterRequest{Group: "a~b", LeaseId: lease}, []string{"group"}},
	{"Register/group NUL", &zkcoordv1.RegisterRequest{Group: "a\x00b", LeaseId: lease}, []string{"group"}},
	{"Register/group non-ASCII", &zkcoordv1.RegisterRequest{Group: "café", LeaseId: lease}, []string{"group"}},
	{"Register/group too long", &zkcoordv1.RegisterRequest{Group: strings.Repeat("g", MaxNameLen+1), LeaseId: lease}, []string{"group"}},
	{"Register/bad member", &zkcoordv1.RegisterRequest{Group: "api", MemberId: "../x", LeaseId: lease}, []string{"member_id"}},
	{"Register/value too big", &zkcoordv1.RegisterRequest{Group: "api", Value: strings.Repeat("x", MaxValueBytes+1), LeaseId: lease}, []string{"value"}},
	{"Register/too many entries", &zkcoordv1.RegisterRequest{Group: "api", Metadata: metadataOf(MaxMetadataEntries + 1), LeaseId: lease}, []string{"metadata"}},
	{"Register/metadata too big", &zkcoordv1.RegisterRequest{Group: "api", Metadata: map[string]string{"k": strings.Repeat("v", MaxMetadataBytes)}, LeaseId: lease}, []string{"metadata"}},
	{"Register/bad keys", &zkcoordv1.RegisterRequest{Group: "api", Metadata: map[string]string{"ok": "", "a b": "", "": "", strings.Repeat("k", MaxMetadataKeyLen+1): "", "k@x": ""}, LeaseId: lease},
		[]string{`metadata[""]`, `metadata["a b"]`, `metadata["k@x"]`, `metadata["` + strings.Repeat("k", MaxMetadataKeyLen+1) + `"]`}},
	{"Register/value not UTF-8", &zkcoordv1.RegisterRequest{Group: "api", Metadata: map[string]string{"k": "\xff"}, LeaseId: lease}, []string{`metadata["k"]`}},
	{"Register/no owner", &zkcoordv1.RegisterRequest{Group: "api"}, []string{"lease_id"}},
	{"Register/lease and ttl", &zkcoordv1.RegisterRequest{Group: "api", LeaseId: lease, Ttl: ttl(time.Minute)}, []string{"ttl"}},
	{"Register/ttl and persistent", &zkcoordv1.RegisterRequest{Group: "api", Ttl: ttl(time.Minute), Persistent: true}, []string{"persistent"}},
	{"Register/all owners", &zkcoordv1.RegisterRequest{Group: "api", LeaseId: lease, Ttl: ttl(time.Minute), Persistent: true}, []string{"ttl", "persistent"}},
	{"Register/bad lease and ttl", &zkcoordv1.RegisterRequest{Group: "api", LeaseId: "x", Ttl: ttl(time.Hour * 48)}, []string{"lease_id", "ttl", "ttl"}},
	{"Register/many", &zkcoordv1.RegisterRequest{MemberId: "a/b", Value: strings.Repeat("x", MaxValueBytes+1)}, []string{"group", "member_id", "value", "lease_id"}},
	{"Deregister/leased", &zkcoordv1.DeregisterRequest{Group: "api", MemberId: "m1", LeaseId: lease}, nil},
	{"Deregister/persistent", &zkcoordv1.DeregisterRequest{Group: "api", MemberId: "m1"}, nil},
	{"Deregister/empty", &zkcoordv1.DeregisterRequest{}, []string{"group", "member_id"}},
	{"Deregister/bad lease", &zkcoordv1.DeregisterRequest{Group: "api", MemberId: "m1", LeaseId: "nope"}, []string{"lease_id"}},
	{"Lookup/group", &zkcoordv1.LookupRequest{Group: "api"}, nil},
	{"Lookup/member", &zkcoordv1.LookupRequest{Group: "api", MemberId: "m1", Consistency: zkcoordv1.Consistency_CONSISTENCY_LINEARIZABLE}, nil},
	{"Lookup/no group", &zkcoordv1.LookupRequest{MemberId: "m1"}, []string{"group"}},
	{"Lookup/bad member", &zkcoordv1.LookupRequest{Group: "api", MemberId: ".."}, []string{"member_id"}},
	{"Lookup/bad consistency", &zkcoordv1.LookupRequest{Group: "api", Consistency: 7}, []string{"consistency"}},
	{"Lookup/negative consistency", &zkcoordv1.LookupRequest{Group: "api", Consistency: -1}, []string{"consistency"}},
	{"Lookup/wait", &zkcoordv1.LookupRequest{Group: "api", AfterRevision: 42, Wait: ttl(30 * time.Second)}, nil},
	{"Lookup/wait max", &zkcoordv1.LookupRequest{Group: "api", AfterRevision: 42, Wait: ttl(MaxWait)}, nil},
	{"Lookup/wait zero", &zkcoordv1.LookupRequest{Group: "api", Wait: ttl(0)}, nil},
	{"Lookup/wait too long", &zkcoordv1.LookupRequest{Group: "api", Wait: ttl(MaxWait + time.Nanosecond)}, []string{"wait"}},
	{"Lookup/wait huge", &zkcoordv1.LookupRequest{Group: "api", Wait: &durationpb.Duration{Seconds: 315576000000}}, []string{"wait"}},
	{"Lookup/wait negative", &zkcoordv1.LookupRequest{Group: "api", Wait: ttl(-time.Second)}, []string{"wait"}},
	{"Lookup/wait malformed", &zkcoordv1.LookupRequest{Group: "api", Wait: &durationpb.Duration{Seconds: 1, Nanos: -1}}, []string{"wait"}},
	{"Lookup/negative revision", &zkcoordv1.LookupRequest{Group: "api", AfterRevision: -1, Wait: ttl(time.Minute)}, []string{"after_revision"}},
	{"WatchGroup/snapshot", &zkcoordv1.WatchGroupRequest{Group: "api"}, nil},
	{"WatchGroup/resume", &zkcoordv1.WatchGroupRequest{Group: "api", StartRevision: 42}, nil},
	{"WatchGroup/no group", &zkcoordv1.WatchGroupRequest{}, []string{"group"}},
	{"WatchGroup/negative", &zkcoordv1.WatchGroupRequest{Group: "api", StartRevision: -1}, []string{"start_revision"}},

	// election.proto
	{"Campaign/own lease", &zkcoordv1.CampaignRequest{Election: "primary", Value: "10.0.0.7:8080"}, nil},
	{"Campaign/lease", &zkcoordv1.CampaignRequest{Election: "primary", LeaseId: lease}, nil},
	{"Campaign/ttl", &zkcoordv1.CampaignRequest{Election: "primary", Ttl: ttl(5 * time.Second)}, nil},
	{"Campaign/no election", &zkcoordv1.CampaignRequest{}, []string{"election"}},
	{"Campaign/value too big", &zkcoordv1.CampaignRequest{Election: "primary", Value: strings.Repeat("x", MaxValueBytes+1)}, []string{"value"}},
	{"Campaign/lease and ttl", &zkcoordv1.CampaignRequest{Election: "primary", LeaseId: lease, Ttl: ttl(5 * time.Second)}, []string{"ttl"}},
	{"Campaign/zero ttl", &zkcoordv1.CampaignRequest{Election: "primary", Ttl: ttl(0)}, []string{"ttl"}},
	{"Campaign/bad lease", &zkcoordv1.CampaignRequest{Election: "primary", LeaseId: "abc"}, []string{"lease_id"}},
	{"Resign/ok", &zkcoordv1.ResignRequest{Election: "primary", LeaseId: lease}, nil},
	{"Resign/no lease", &zkcoordv1.ResignRequest{Election: "primary"}, []string{"lease_id"}},
	{"Resign/empty", &zkcoordv1.ResignRequest{}, []string{"election", "lease_id"}},
	{"Leader/ok", &zkcoordv1.LeaderRequest{Election: "primary"}, nil},
	{"Leader/empty", &zkcoordv1.LeaderRequest{}, []string{"election"}},
	{"Leader/bad", &zkcoordv1.LeaderRequest{Election: "a/../b"}, []string{"election"}},
	{"Leader/wait", &zkcoordv1.LeaderRequest{Election: "primary", AfterRevision: 7, Wait: ttl(time.Minute)}, nil},
	{"Leader/wait bad", &zkcoordv1.LeaderRequest{Election: "primary", AfterRevision: -7, Wait: ttl(time.Hour)}, []string{"after_revision", "wait"}},
	{"Observe/ok", &zkcoordv1.ObserveRequest{Election: "primary"}, nil},
	{"Observe/empty", &zkcoordv1.ObserveRequest{}, []string{"election"}},

	// barrier.proto
	{"AwaitBarrier/ok", &zkcoordv1.AwaitBarrierRequest{Barrier: "start", Threshold: 3}, nil},
	{"AwaitBarrier/full", &zkcoordv1.AwaitBarrierRequest{Barrier: "start", Threshold: MaxThreshold, ParticipantId: "worker-1", LeaseId: lease}, nil},
	{"AwaitBarrier/ttl", &zkcoordv1.AwaitBarrierRequest{Barrier: "start", Threshold: 1, Ttl: ttl(time.Minute)}, nil},
	{"AwaitBarrier/no barrier", &zkcoordv1.AwaitBarrierRequest{Threshold: 3}, []string{"barrier"}},
	{"AwaitBarrier/zero threshold", &zkcoordv1.AwaitBarrierRequest{Barrier: "start"}, []string{"threshold"}},
	{"AwaitBarrier/threshold too big", &zkcoordv1.AwaitBarrierRequest{Barrier: "start", Threshold: MaxThreshold + 1}, []string{"threshold"}},
	{"AwaitBarrier/bad participant", &zkcoordv1.AwaitBarrierRequest{Barrier: "start", Threshold: 3, ParticipantId: "w 1"}, []string{"participant_id"}},
	{"AwaitBarrier/lease and ttl", &zkcoordv1.AwaitBarrierRequest{Barrier: "start", Threshold: 3, LeaseId: lease, Ttl: ttl(time.Minute)}, []string{"ttl"}},
	{"AwaitBarrier/ttl too long", &zkcoordv1.AwaitBarrierRequest{Barrier: "start", Threshold: 3, Ttl: ttl(25 * time.Hour)}, []string{"ttl"}},
	{"JoinBarrier/lease", &zkcoordv1.JoinBarrierRequest{Barrier: "start", Threshold: 3, ParticipantId: "worker-1", LeaseId: lease}, nil},
	{"JoinBarrier/ttl", &zkcoordv1.JoinBarrierRequest{Barrier: "start", Threshold: 3, Ttl: ttl(time.Minute)}, nil},
	{"JoinBarrier/no owner", &zkcoordv1.JoinBarrierRequest{Barrier: "start", Threshold: 3}, []string{"lease_id"}},
	{"JoinBarrier/lease and ttl", &zkcoordv1.JoinBarrierRequest{Barrier: "start", Threshold: 3, LeaseId: lease, Ttl: ttl(time.Minute)}, []string{"ttl"}},
	{"JoinBarrier/empty", &zkcoordv1.JoinBarrierRequest{}, []string{"barrier", "threshold", "lease_id"}},
	{"JoinBarrier/bad", &zkcoordv1.JoinBarrierRequest{Barrier: "a b", Threshold: -1, ParticipantId: "..", Ttl: ttl(0)}, []string{"barrier", "threshold", "participant_id", "ttl"}},
	{"GetBarrier/ok", &zkcoordv1.GetBarrierRequest{Barrier: "start"}, nil},
	{"GetBarrier/wait", &zkcoordv1.GetBarrierRequest{Barrier: "start", AfterRevision: 9, Wait: ttl(MaxWait)}, nil},
	{"GetBarrier/empty", &zkcoordv1.GetBarrierRequest{}, []string{"barrier"}},
	{"GetBarrier/wait too long", &zkcoordv1.GetBarrierRequest{Barrier: "start", Wait: ttl(10 * time.Minute)}, []string{"wait"}},
	{"LeaveBarrier/ok", &zkcoordv1.LeaveBarrierRequest{Barrier: "start", ParticipantId: "worker-1", LeaseId: lease}, nil},
	{"LeaveBarrier/empty", &zkcoordv1.LeaveBarrierRequest{}, []string{"barrier", "participant_id", "lease_id"}},
	{"AwaitGroup/ok", &zkcoordv1.AwaitGroupRequest{Group: "api", MinMembers: 2}, nil},
	{"AwaitGroup/no group", &zkcoordv1.AwaitGroupRequest{MinMembers: 2}, []string{"group"}},
	{"AwaitGroup/zero", &zkcoordv1.AwaitGroupRequest{Group: "api"}, []string{"min_members"}},
	{"AwaitGroup/too many", &zkcoordv1.AwaitGroupRequest{Group: "api", MinMembers: MaxThreshold + 1}, []string{"min_members"}},

	// lock.proto
	{"Acquire/own lease", &zkcoordv1.AcquireLockRequest{Lock: "jobs.db"}, nil},
	{"Acquire/shared, lease, reentrant", &zkcoordv1.AcquireLockRequest{Lock: "jobs.db", Mode: zkcoordv1.LockMode_LOCK_MODE_SHARED, LeaseId: lease, Reentrant: true}, nil},
	{"Acquire/resume", &zkcoordv1.AcquireLockRequest{Lock: "jobs.db", LeaseId: lease, Resume: "0123456789abcdef"}, nil},
	{"Acquire/empty", &zkcoordv1.AcquireLockRequest{}, []string{"lock"}},
	{"Acquire/hostile names", &zkcoordv1.AcquireLockRequest{Lock: "a/../b"}, []string{"lock"}},
	{"Acquire/dot dot", &zkcoordv1.AcquireLockRequest{Lock: ".."}, []string{"lock"}},
	{"Acquire/NUL", &zkcoordv1.AcquireLockRequest{Lock: "a\x00b"}, []string{"lock"}},
	{"Acquire/bad mode", &zkcoordv1.AcquireLockRequest{Lock: "l", Mode: 3}, []string{"mode"}},
	{"Acquire/lease and ttl", &zkcoordv1.AcquireLockRequest{Lock: "l", LeaseId: lease, Ttl: ttl(time.Minute)}, []string{"ttl"}},
	{"Acquire/resume without lease", &zkcoordv1.AcquireLockRequest{Lock: "l", Resume: "0123456789abcdef"}, []string{"resume"}},
	{"Acquire/bad resume", &zkcoordv1.AcquireLockRequest{Lock: "l", LeaseId: lease, Resume: "0123456789ABCDEF", Reentrant: true}, []string{"resume", "reentrant"}},
	{"TryAcquire/lease", &zkcoordv1.TryAcquireLockRequest{Lock: "l", LeaseId: lease}, nil},
	{"TryAcquire/ttl", &zkcoordv1.TryAcquireLockRequest{Lock: "l", Mode: zkcoordv1.LockMode_LOCK_MODE_EXCLUSIVE, Ttl: ttl(time.Minute)}, nil},
	{"TryAcquire/no owner", &zkcoordv1.TryAcquireLockRequest{Lock: "l"}, []string{"lease_id"}},
	{"TryAcquire/bad", &zkcoordv1.TryAcquireLockRequest{Lock: "l/x", Mode: -1, LeaseId: "x", Ttl: ttl(time.Hour * 48)}, []string{"lock", "mode", "lease_id", "ttl", "ttl"}},
	{"Release/ok", &zkcoordv1.ReleaseLockRequest{Lock: "l", LeaseId: lease}, nil},
	{"Release/hold", &zkcoordv1.ReleaseLockRequest{Lock: "l", LeaseId: lease, Hold: "0123456789abcdef"}, nil},
	{"Release/empty", &zkcoordv1.ReleaseLockRequest{}, []string{"lock", "lease_id"}},
	{"Release/bad hold", &zkcoordv1.ReleaseLockRequest{Lock: "l", LeaseId: lease, Hold: "01234"}, []string{"hold"}},
	{"GetLock/ok", &zkcoordv1.GetLockRequest{Lock: "l"}, nil},
	{"GetLock/bad", &zkcoordv1.GetLockRequest{Lock: "."}, []string{"lock"}},
	{"CheckSequencer/lock", &zkcoordv1.CheckSequencerRequest{Lock: "l", FencingToken: 7}, nil},
	{"CheckSequencer/election", &zkcoordv1.CheckSequencerRequest{Election: "e", FencingToken: 7}, nil},
	{"CheckSequencer/neither", &zkcoordv1.CheckSequencerRequest{FencingToken: 7}, []string{"lock"}},
	{"CheckSequencer/both", &zkcoordv1.CheckSequencerRequest{Lock: "l", Election: "e", FencingToken: 7}, []string{"election"}},
	{"CheckSequencer/bad", &zkcoordv1.CheckSequencerRequest{Lock: "l/..", FencingToken: -1}, []string{"lock", "fencing_token"}},
	// semaphore.proto
	{"AcquireSemaphore/own lease", &zkcoordv1.AcquireSemaphoreRequest{Semaphore: "jobs", Permits: 2, Value: "w1"}, nil},
	{"AcquireSemaphore/lease", &zkcoordv1.AcquireSemaphoreRequest{Semaphore: "jobs", Permits: MaxPermits, LeaseId: lease}, nil},
	{"AcquireSemaphore/empty", &zkcoordv1.AcquireSemaphoreRequest{}, []string{"semaphore", "permits"}},
	{"AcquireSemaphore/slash", &zkcoordv1.AcquireSemaphoreRequest{Semaphore: "a/b", Permits: 1}, []string{"semaphore"}},
	{"AcquireSemaphore/dotdot", &zkcoordv1.AcquireSemaphoreRequest{Semaphore: "..", Permits: 1}, []string{"semaphore"}},
	{"AcquireSemaphore/NUL", &zkcoordv1.AcquireSemaphoreRequest{Semaphore: "a\x00", Permits: 1}, []string{"semaphore"}},
	{"AcquireSemaphore/too many permits", &zkcoordv1.AcquireSemaphoreRequest{Semaphore: "jobs", Permits: MaxPermits + 1}, []string{"permits"}},
	{"AcquireSemaphore/negative permits", &zkcoordv1.AcquireSemaphoreRequest{Semaphore: "jobs", Permits: -1}, []string{"permits"}},
	{"AcquireSemaphore/value too big", &zkcoordv1.AcquireSemaphoreRequest{Semaphore: "jobs", Permits: 1, Value: strings.Repeat("x", MaxValueBytes+1)}, []string{"value"}},
	{"AcquireSemaphore/lease and ttl", &zkcoordv1.AcquireSemaphoreRequest{Semaphore: "jobs", Permits: 1, LeaseId: lease, Ttl: ttl(time.Minute)}, []string{"ttl"}},
	{"TryAcquireSemaphore/ttl", &zkcoordv1.TryAcquireSemaphoreRequest{Semaphore: "jobs", Permits: 2, Ttl: ttl(time.Minute)}, nil},
	{"TryAcquireSemaphore/no owner", &zkcoordv1.TryAcquireSemaphoreRequest{Semaphore: "jobs", Permits: 2}, []string{"lease_id"}},
	{"TryAcquireSemaphore/bad", &zkcoordv1.TryAcquireSemaphoreRequest{Semaphore: ".x", LeaseId: "ABC"}, []string{"semaphore", "permits", "lease_id"}},
	{"ReleaseSemaphore/ok", &zkcoordv1.ReleaseSemaphoreRequest{Semaphore: "jobs", LeaseId: lease}, nil},
	{"ReleaseSemaphore/empty", &zkcoordv1.ReleaseSemaphoreRequest{}, []string{"semaphore", "lease_id"}},
	{"GetSemaphore/ok", &zkcoordv1.GetSemaphoreRequest{Semaphore: "jobs"}, nil},
	{"GetSemaphore/empty", &zkcoordv1.GetSemaphoreRequest{}, []string{"semaphore"}},

	// status.proto
	{"GetStatus/ok", &zkcoordv1.GetStatusRequest{}, nil},

	// Messages without rules pass.
	{"unknown/proto", &emptypb.Empty{}, nil},
	{"unknown/response", &zkcoordv1.GrantResponse{LeaseId: "not checked"}, nil},
	{"unknown/not proto", "a string", nil},
}

// checkErr fails t unless err is what Request returns for a message named
// msgName with the given violations (nil: no error).
func checkErr(t *testing.T, err error, msgName string, want []string) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("err = %v, want nil", err)
		}
		return
	}
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.InvalidArgument {
		t.Fatalf("err = %v, want an InvalidArgument status", err)
	}
	var got []string
	var first string
	for _, d := range st.Details() {
		br, ok := d.(*errdetails.BadRequest)
		if !ok {
			t.Fatalf("unexpected detail %T", d)
		}
		for _, fv := range br.GetFieldViolations() {
			if fv.GetDescription() == "" {
				t.Errorf("violation of %s has no description", fv.GetField())
			}
			if first == "" {
				first = fv.GetDescription()
			}
			got = append(got, fv.GetField())
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("violations = %q, want %q (message %q)", got, want, st.Message())
	}
	if wantMsg := "invalid " + msgName + "." + want[0] + ": " + first; st.Message() != wantMsg {
		t.Errorf("message = %q, want %q", st.Message(), wantMsg)
	}
}

func nameOf(msg any) string {
	if m, ok := msg.(proto.Message); ok {
		return string(m.ProtoReflect().Descriptor().Name())
	}
	return "request"
}

func TestRequest(t *testing.T) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkErr(t, Request(tc.msg), nameOf(tc.msg), tc.want)
		})
	}
}

func TestRequestMessage(t *testing.T) {
	tests := []struct {
		msg  any
		want string
	}{
		{&zkcoordv1.RegisterRequest{Group: "a/b", LeaseId: lease},
			`invalid RegisterRequest.group: must be 1-128 characters of [A-Za-z0-9._:@=-], not starting with '.'`},
		{&zkcoordv1.RegisterRequest{Group: "api"},
			`invalid RegisterRequest.lease_id: one of lease_id, ttl or persistent is required`},
		{&zkcoordv1.RegisterRequest{Group: "api", LeaseId: lease, Persistent: true},
			`invalid RegisterRequest.persistent: conflicts with lease_id: set exactly one of lease_id, ttl or persistent`},
		{&zkcoordv1.RegisterRequest{Group: "api", LeaseId: lease, Metadata: map[string]string{"a b": "1"}},
			`invalid RegisterRequest.metadata["a b"]: key must be 1-128 characters of [A-Za-z0-9._:/-]`},
		{&zkcoordv1.GrantRequest{Ttl: ttl(time.Millisecond)},
			`invalid GrantRequest.ttl: must be between 1s and 24h`},
		{&zkcoordv1.RevokeRequest{LeaseId: "x"},
			`invalid RevokeRequest.lease_id: malformed lease id: must be 32 lowercase hex characters`},
		{&zkcoordv1.LeaderRequest{},
			`invalid LeaderRequest.election: is required`},
		{&zkcoordv1.AwaitGroupRequest{Group: "api", MinMembers: -3},
			`invalid AwaitGroupRequest.min_members: must be between 1 and 100000, not -3`},
	}
	for _, tt := range tests {
		if got := status.Convert(Request(tt.msg)).Message(); got != tt.want {
			t.Errorf("Request(%v) message = %q, want %q", tt.msg, got, tt.want)
		}
	}
}

func TestUnaryServerInterceptor(t *testing.T) {
	intercept := UnaryServerInterceptor()
	info := &grpc.UnaryServerInfo{FullMethod: "/zkcoord.v1.Test/Call"}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			called := false
			handler := func(ctx context.Context, req any) (any, error) {
				called = true
				return "ok", nil
			}
			resp, err := intercept(t.Context(), tc.msg, info, handler)
			checkErr(t, err, nameOf(tc.msg), tc.want)
			if valid := tc.want == nil; called != valid {
				t.Fatalf("handler called = %v, want %v", called, valid)
			}
			if tc.want == nil && resp != "ok" {
				t.Fatalf("resp = %v, want the handler's", resp)
			}
		})
	}
}

// fakeStream is a grpc.ServerStream that receives copies of msgs, then
// io.EOF.
type fakeStream struct {
	grpc.ServerStream
	ctx  context.Context
	msgs []proto.Message
}

func (s *fakeStream) Context() context.Context { return s.ctx }

func (s *fakeStream) RecvMsg(m any) error {
	if len(s.msgs) == 0 {
		return io.EOF
	}
	proto.Merge(m.(proto.Message), s.msgs[0])
	s.msgs = s.msgs[1:]
	return nil
}

func TestStreamServerInterceptor(t *testing.T) {
	intercept := StreamServerInterceptor()
	info := &grpc.StreamServerInfo{FullMethod: "/zkcoord.v1.Test/Stream", IsServerStream: true}
	for _, tc := range cases {
		msg, ok := tc.msg.(proto.Message)
		if !ok {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			// Like a generated server-streaming handler: receive the
			// request, then call the service method.
			called := false
			handler := func(srv any, ss grpc.ServerStream) error {
				req := msg.ProtoReflect().New().Interface()
				if err := ss.RecvMsg(req); err != nil {
					return err
				}
				called = true
				return nil
			}
			ss := &fakeStream{ctx: t.Context(), msgs: []proto.Message{msg}}
			err := intercept(nil, ss, info, handler)
			checkErr(t, err, nameOf(msg), tc.want)
			if valid := tc.want == nil; called != valid {
				t.Fatalf("service method called = %v, want %v", called, valid)
			}
		})
	}
}

func TestStreamServerInterceptorEachMessage(t *testing.T) {
	ss := &fakeStream{ctx: t.Context(), msgs: []proto.Message{
		&zkcoordv1.KeepAliveStreamRequest{LeaseId: lease},
		&zkcoordv1.KeepAliveStreamRequest{LeaseId: lease},
		&zkcoordv1.KeepAliveStreamRequest{LeaseId: "bad"},
		&zkcoordv1.KeepAliveStreamRequest{LeaseId: lease},
	}}
	renewed := 0
	handler := func(srv any, ss grpc.ServerStream) error {
		for {
			var req zkcoordv1.KeepAliveStreamRequest
			if err := ss.RecvMsg(&req); err != nil {
				return err
			}
			renewed++
		}
	}
	err := StreamServerInterceptor()(nil, ss, &grpc.StreamServerInfo{IsClientStream: true, IsServerStream: true}, handler)
	checkErr(t, err, "KeepAliveStreamRequest", []string{"lease_id"})
	if renewed != 2 {
		t.Fatalf("renewed %d leases before the bad message, want 2", renewed)
	}
}

// EOF from the underlying stream reaches the handler unchanged.
func TestStreamServerInterceptorEOF(t *testing.T) {
	handler := func(srv any, ss grpc.ServerStream) error {
		return ss.RecvMsg(&zkcoordv1.KeepAliveStreamRequest{})
	}
	err := StreamServerInterceptor()(nil, &fakeStream{ctx: t.Context()}, &grpc.StreamServerInfo{}, handler)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("err = %v, want io.EOF", err)
	}
}

// fakeServer implements the lease and registry services for the bufconn
// test, counting the calls that reach it.
type fakeServer struct {
	zkcoordv1.UnimplementedLeaseServiceServer
	zkcoordv1.UnimplementedRegistryServiceServer
	calls atomic.Int32
}

func (s *fakeServer) Register(ctx context.Context, req *zkcoordv1.RegisterRequest) (*zkcoordv1.RegisterResponse, error) {
	s.calls.Add(1)
	return &zkcoordv1.RegisterResponse{LeaseId: req.GetLeaseId()}, nil
}

func (s *fakeServer) WatchGroup(req *zkcoordv1.WatchGroupRequest, stream grpc.ServerStreamingServer[zkcoordv1.WatchGroupResponse]) error {
	s.calls.Add(1)
	return stream.Send(&zkcoordv1.WatchGroupResponse{Type: zkcoordv1.WatchGroupResponse_TYPE_SNAPSHOT})
}

func (s *fakeServer) KeepAliveStream(stream grpc.BidiStreamingServer[zkcoordv1.KeepAliveStreamRequest, zkcoordv1.KeepAliveStreamResponse]) error {
	s.calls.Add(1)
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(&zkcoordv1.KeepAliveStreamResponse{LeaseId: req.GetLeaseId()}); err != nil {
			return err
		}
	}
}

// dial serves srv over bufconn with both interceptors and returns a client
// connection; everything is closed when t ends.
func dial(t *testing.T, srv *fakeServer) *grpc.ClientConn {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	s := grpc.NewServer(
		grpc.ChainUnaryInterceptor(UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(StreamServerInterceptor()),
	)
	zkcoordv1.RegisterLeaseServiceServer(s, srv)
	zkcoordv1.RegisterRegistryServiceServer(s, srv)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = s.Serve(lis)
	}()
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		s.Stop()
		<-served
	})
	return conn
}

func TestInterceptorsOverGRPC(t *testing.T) {
	srv := &fakeServer{}
	conn := dial(t, srv)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	registry := zkcoordv1.NewRegistryServiceClient(conn)
	leases := zkcoordv1.NewLeaseServiceClient(conn)

	t.Run("unary refused", func(t *testing.T) {
		before := srv.calls.Load()
		_, err := registry.Register(ctx, &zkcoordv1.RegisterRequest{Group: "..", Ttl: ttl(time.Millisecond)})
		checkErr(t, err, "RegisterRequest", []string{"group", "ttl"})
		if srv.calls.Load() != before {
			t.Fatal("Register reached the service")
		}
	})
	t.Run("unary passed", func(t *testing.T) {
		resp, err := registry.Register(ctx, &zkcoordv1.RegisterRequest{Group: "api", LeaseId: lease})
		if err != nil || resp.GetLeaseId() != lease {
			t.Fatalf("Register = %v, %v", resp, err)
		}
	})
	t.Run("server stream refused", func(t *testing.T) {
		before := srv.calls.Load()
		stream, err := registry.WatchGroup(ctx, &zkcoordv1.WatchGroupRequest{Group: "api", StartRevision: -5})
		if err != nil {
			t.Fatal(err)
		}
		_, err = stream.Recv()
		checkErr(t, err, "WatchGroupRequest", []string{"start_revision"})
		if srv.calls.Load() != before {
			t.Fatal("WatchGroup reached the service")
		}
	})
	t.Run("server stream passed", func(t *testing.T) {
		stream, err := registry.WatchGroup(ctx, &zkcoordv1.WatchGroupRequest{Group: "api"})
		if err != nil {
			t.Fatal(err)
		}
		if resp, err := stream.Recv(); err != nil || resp.GetType() != zkcoordv1.WatchGroupResponse_TYPE_SNAPSHOT {
			t.Fatalf("Recv = %v, %v", resp, err)
		}
	})
	t.Run("bidi stream", func(t *testing.T) {
		stream, err := leases.KeepAliveStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&zkcoordv1.KeepAliveStreamRequest{LeaseId: lease}); err != nil {
			t.Fatal(err)
		}
		if resp, err := stream.Recv(); err != nil || resp.GetLeaseId() != lease {
			t.Fatalf("Recv = %v, %v", resp, err)
		}
		if err := stream.Send(&zkcoordv1.KeepAliveStreamRequest{LeaseId: "Z"}); err != nil {
			t.Fatal(err)
		}
		_, err = stream.Recv()
		checkErr(t, err, "KeepAliveStreamRequest", []string{"lease_id"})
	})
}
