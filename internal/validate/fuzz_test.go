package validate

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"

	zkcoordv1 "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

// requests builds an empty message of every request type of the API.
var requests = []func() proto.Message{
	func() proto.Message { return &zkcoordv1.GrantRequest{} },
	func() proto.Message { return &zkcoordv1.KeepAliveRequest{} },
	func() proto.Message { return &zkcoordv1.KeepAliveStreamRequest{} },
	func() proto.Message { return &zkcoordv1.RevokeRequest{} },
	func() proto.Message { return &zkcoordv1.GetLeaseRequest{} },
	func() proto.Message { return &zkcoordv1.RegisterRequest{} },
	func() proto.Message { return &zkcoordv1.DeregisterRequest{} },
	func() proto.Message { return &zkcoordv1.LookupRequest{} },
	func() proto.Message { return &zkcoordv1.WatchGroupRequest{} },
	func() proto.Message { return &zkcoordv1.CampaignRequest{} },
	func() proto.Message { return &zkcoordv1.ResignRequest{} },
	func() proto.Message { return &zkcoordv1.LeaderRequest{} },
	func() proto.Message { return &zkcoordv1.ObserveRequest{} },
	func() proto.Message { return &zkcoordv1.AwaitBarrierRequest{} },
	func() proto.Message { return &zkcoordv1.LeaveBarrierRequest{} },
	func() proto.Message { return &zkcoordv1.AwaitGroupRequest{} },
	func() proto.Message { return &zkcoordv1.AcquireLockRequest{} },
	func() proto.Message { return &zkcoordv1.TryAcquireLockRequest{} },
	func() proto.Message { return &zkcoordv1.ReleaseLockRequest{} },
	func() proto.Message { return &zkcoordv1.GetLockRequest{} },
	func() proto.Message { return &zkcoordv1.CheckSequencerRequest{} },
	func() proto.Message { return &zkcoordv1.AcquireSemaphoreRequest{} },
	func() proto.Message { return &zkcoordv1.TryAcquireSemaphoreRequest{} },
	func() proto.Message { return &zkcoordv1.ReleaseSemaphoreRequest{} },
	func() proto.Message { return &zkcoordv1.GetSemaphoreRequest{} },
	func() proto.Message { return &zkcoordv1.GetStatusRequest{} },
}

// nameFields are the fields that become znode names.
var nameFields = map[protoreflect.Name]bool{
	"group": true, "election": true, "barrier": true, "member_id": true, "participant_id": true, "lock": true, "semaphore": true,
}

// FuzzRequest decodes arbitrary bytes as each request type, as the gRPC
// server would, and validates the result. Validation must never panic; an
// accepted request must hold only names that are one safe znode name, well
// formed lease ids, values and TTLs within bounds; a refused one must be
// INVALID_ARGUMENT with at least one field violation.
func FuzzRequest(f *testing.F) {
	lease := strings.Repeat("ab", 16)
	seeds := []proto.Message{
		&zkcoordv1.RegisterRequest{Group: "web", MemberId: "w1", Value: "10.0.0.1:80", LeaseId: lease},
		&zkcoordv1.RegisterRequest{Group: "../etc", MemberId: "a/b", Ttl: durationpb.New(time.Millisecond)},
		&zkcoordv1.RegisterRequest{Group: "g", MemberId: "m\x00", Persistent: true, Metadata: map[string]string{"a b": "v"}},
		&zkcoordv1.CampaignRequest{Election: "lead", Value: "me", Ttl: durationpb.New(10 * time.Second)},
		&zkcoordv1.AwaitBarrierRequest{Barrier: "b", Threshold: 3, ParticipantId: "p1"},
		&zkcoordv1.AwaitBarrierRequest{Barrier: ".", Threshold: -1},
		&zkcoordv1.GrantRequest{Ttl: &durationpb.Duration{Seconds: 1, Nanos: -5}},
		&zkcoordv1.KeepAliveRequest{LeaseId: strings.ToUpper(lease)},
		&zkcoordv1.LookupRequest{Group: "g", Consistency: 7},
		&zkcoordv1.AcquireLockRequest{Lock: "l", Mode: zkcoordv1.LockMode_LOCK_MODE_SHARED, LeaseId: lease, Resume: "0123456789abcdef"},
		&zkcoordv1.CheckSequencerRequest{Lock: "../x", Election: "e", FencingToken: -3},
		&zkcoordv1.AcquireSemaphoreRequest{Semaphore: "jobs", Permits: 2, Value: "w1"},
		&zkcoordv1.TryAcquireSemaphoreRequest{Semaphore: "a/..", Permits: 1 << 30, LeaseId: lease},
	}
	for _, m := range seeds {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		for i, mk := range requests {
			if mk().ProtoReflect().Descriptor().FullName() == m.ProtoReflect().Descriptor().FullName() {
				f.Add(uint8(i), b)
			}
		}
	}
	f.Add(uint8(0), []byte{0x0a, 0x02, 0x08, 0x01})
	f.Fuzz(func(t *testing.T, kind uint8, data []byte) {
		msg := requests[int(kind)%len(requests)]()
		if proto.Unmarshal(data, msg) != nil {
			return // the gRPC codec refuses it before validation
		}
		err := Request(msg)
		if err != nil {
			checkRefusal(t, msg, err)
			return
		}
		checkAccepted(t, msg.ProtoReflect())
	})
}

func checkRefusal(t *testing.T, msg proto.Message, err error) {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.InvalidArgument {
		t.Fatalf("%T refused with %v, want INVALID_ARGUMENT", msg, err)
	}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok && len(br.GetFieldViolations()) > 0 {
			return
		}
	}
	t.Fatalf("%T refused without field violations: %v", msg, err)
}

func checkAccepted(t *testing.T, m protoreflect.Message) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case nameFields[fd.Name()] && fd.Kind() == protoreflect.StringKind:
			if err := safeZnodeName(v.String()); err != nil {
				t.Fatalf("accepted %s %s = %q: %v", m.Descriptor().Name(), fd.Name(), v.String(), err)
			}
		case fd.Name() == "lease_id":
			if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(v.String()) {
				t.Fatalf("accepted %s lease_id %q", m.Descriptor().Name(), v.String())
			}
		case fd.Name() == "resume" || fd.Name() == "hold":
			if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(v.String()) {
				t.Fatalf("accepted %s %s %q", m.Descriptor().Name(), fd.Name(), v.String())
			}
		case fd.Name() == "value" && fd.Kind() == protoreflect.StringKind:
			if len(v.String()) > MaxValueBytes {
				t.Fatalf("accepted a %d-byte value", len(v.String()))
			}
		case fd.Name() == "permits":
			if n := v.Int(); n < 1 || n > MaxPermits {
				t.Fatalf("accepted %d permits", n)
			}
		case fd.Name() == "ttl":
			d := &durationpb.Duration{}
			proto.Merge(d, v.Message().Interface())
			if err := d.CheckValid(); err != nil || d.AsDuration() < MinTTL || d.AsDuration() > MaxTTL {
				t.Fatalf("accepted ttl %v (%v)", d, err)
			}
		case fd.Name() == "metadata":
			total := 0
			v.Map().Range(func(k protoreflect.MapKey, val protoreflect.Value) bool {
				total += len(k.String()) + len(val.String())
				if !utf8.ValidString(val.String()) || strings.ContainsRune(k.String(), 0) {
					t.Fatalf("accepted metadata %q=%q", k.String(), val.String())
				}
				return true
			})
			if total > MaxMetadataBytes || v.Map().Len() > MaxMetadataEntries {
				t.Fatalf("accepted metadata of %d entries, %d bytes", v.Map().Len(), total)
			}
		}
		return true
	})
}

// safeZnodeName is an independent statement of what a name may be: one
// path segment ZooKeeper accepts and zkcoord's layout cannot confuse.
func safeZnodeName(s string) error {
	switch {
	case s == "" || s == "." || s == "..":
		return errors.New("empty or a relative path segment")
	case len(s) > MaxNameLen:
		return errors.New("too long")
	case strings.ContainsAny(s, "/\x00~ "):
		return errors.New("holds '/', NUL, '~' or a space")
	case strings.HasPrefix(s, "."):
		return errors.New("starts with '.'")
	}
	for _, r := range s {
		if r < 0x21 || r > 0x7e {
			return errors.New("not printable ASCII")
		}
	}
	return nil
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_:@=-][A-Za-z0-9._:@=-]{0,127}$`)

// FuzzName checks validName against a regular expression of the same
// grammar, and that every accepted name is a safe znode name.
func FuzzName(f *testing.F) {
	for _, s := range []string{"web", "a.b", ".", "..", "a/b", "x\x00", "é", strings.Repeat("a", 128), strings.Repeat("a", 129), "-", "a~b", "a b", "@=:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, want := validName(s), nameRE.MatchString(s)
		if got != want {
			t.Fatalf("validName(%q) = %v, the grammar says %v", s, got, want)
		}
		if got {
			if err := safeZnodeName(s); err != nil {
				t.Fatalf("validName accepted %q: %v", s, err)
			}
		}
	})
}
