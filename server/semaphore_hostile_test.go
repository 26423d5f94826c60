package server_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/auth"
	"github.com/zkcoord/zkcoord/internal/testing/testenv"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/internal/zkx"
	"github.com/zkcoord/zkcoord/server"
)

// semPolicy has two principals with the lock right over every name (so
// that malformed names reach validation), one that may only read, and one
// with no right over semaphores.
const semPolicy = `{
  "principals": [
    {"name": "worker", "token": "worker-token-0123456789", "scopes": [{"prefix": "", "rights": ["lock"]}]},
    {"name": "rival", "token": "rival-token-0123456789", "scopes": [{"prefix": "", "rights": ["lock"]}]},
    {"name": "reader", "token": "reader-token-0123456789", "scopes": [{"prefix": "", "rights": ["read"]}]},
    {"name": "web", "token": "web-token-0123456789", "scopes": [{"prefix": "app.", "rights": ["register"]}]}
  ]
}`

// TestSemaphoreHostile sends malformed requests (names with '/', '..',
// NUL; 0, negative and huge permits; bad lease ids; oversized values) and
// requests that act for another principal's lease, without the lock right,
// or for a lease that does not exist, and checks each answer; then that
// ZooKeeper's tree is as it was and the holder still holds.
func TestSemaphoreHostile(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	policy := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(policy, []byte(semPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := auth.LoadSource(policy, func(err error) { t.Logf("policy reload: %v", err) })
	if err != nil {
		t.Fatal(err)
	}
	sess, lay := zktest.Session(t)
	addr := testenv.ServeAddr(t, sess, server.WithRoot(lay.Root), server.WithAuth(auth.Config{Source: src}))
	dial := func(token string) pb.SemaphoreServiceClient {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithPerRPCCredentials(auth.Bearer(token, false)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		return pb.NewSemaphoreServiceClient(cc)
	}
	worker, rival := dial("worker-token-0123456789"), dial("rival-token-0123456789")
	reader, web := dial("reader-token-0123456789"), dial("web-token-0123456789")

	// The victim: worker's lease holds sem.jobs's one permit.
	held, err := worker.TryAcquireSemaphore(ctx, &pb.TryAcquireSemaphoreRequest{Semaphore: "sem.jobs", Permits: 1, Value: "w",
		Ttl: durationpb.New(time.Minute)})
	if err != nil || !held.GetAcquired() {
		t.Fatalf("the victim's permit: %v, %v", held, err)
	}
	victim := held.GetLeaseId()
	truth, err := zkx.Dial(ctx, testenv.ZooKeeper(t))
	if err != nil {
		t.Fatal(err)
	}
	defer truth.Close()
	before := tree(t, truth.Conn())

	type call struct {
		name  string
		code  codes.Code
		field string // the BadRequest field violation expected ("" for none)
		do    func() error
	}
	var calls []call
	add := func(name string, code codes.Code, field string, do func() error) {
		calls = append(calls, call{name, code, field, do})
	}
	inv := codes.InvalidArgument
	ttl := durationpb.New(time.Minute)
	for _, n := range badNames {
		q := fmt.Sprintf("%q", n)
		add("AcquireSemaphore "+q, inv, "semaphore", func() error {
			return first(worker.AcquireSemaphore(ctx, &pb.AcquireSemaphoreRequest{Semaphore: n, Permits: 1}))
		})
		add("TryAcquireSemaphore "+q, inv, "semaphore", func() error {
			_, err := worker.TryAcquireSemaphore(ctx, &pb.TryAcquireSemaphoreRequest{Semaphore: n, Permits: 1, Ttl: ttl})
			return err
		})
		add("ReleaseSemaphore "+q, inv, "semaphore", func() error {
			_, err := worker.ReleaseSemaphore(ctx, &pb.ReleaseSemaphoreRequest{Semaphore: n, LeaseId: victim})
			return err
		})
		add("GetSemaphore "+q, inv, "semaphore", func() error {
			_, err := reader.GetSemaphore(ctx, &pb.GetSemaphoreRequest{Semaphore: n})
			return err
		})
	}
	for _, n := range []int32{0, -1, -1 << 31, 10001, 1 << 30} {
		add(fmt.Sprint("AcquireSemaphore permits ", n), inv, "permits", func() error {
			return first(worker.AcquireSemaphore(ctx, &pb.AcquireSemaphoreRequest{Semaphore: "sem.new", Permits: n}))
		})
		add(fmt.Sprint("TryAcquireSemaphore permits ", n), inv, "permits", func() error {
			_, err := worker.TryAcquireSemaphore(ctx, &pb.TryAcquireSemaphoreRequest{Semaphore: "sem.new", Permits: n, Ttl: ttl})
			return err
		})
	}
	for _, id := range []string{strings.ToUpper(strings.Repeat("ab", 16)), strings.Repeat("a", 31), "../" + strings.Repeat("a", 29),
		strings.Repeat("a", 31) + "\x00"} {
		add(fmt.Sprintf("ReleaseSemaphore lease %q", id), inv, "lease_id", func() error {
			_, err := worker.ReleaseSemaphore(ctx, &pb.ReleaseSemaphoreRequest{Semaphore: "sem.jobs", LeaseId: id})
			return err
		})
		add(fmt.Sprintf("AcquireSemaphore lease %q", id), inv, "lease_id", func() error {
			return first(worker.AcquireSemaphore(ctx, &pb.AcquireSemaphoreRequest{Semaphore: "sem.jobs", Permits: 1, LeaseId: id}))
		})
	}
	add("AcquireSemaphore value 64 KiB + 1", inv, "value", func() error {
		return first(worker.AcquireSemaphore(ctx, &pb.AcquireSemaphoreRequest{Semaphore: "sem.new", Permits: 1,
			Value: strings.Repeat("x", 64<<10+1)}))
	})
	add("TryAcquireSemaphore without lease or ttl", inv, "lease_id", func() error {
		_, err := worker.TryAcquireSemaphore(ctx, &pb.TryAcquireSemaphoreRequest{Semaphore: "sem.new", Permits: 1})
		return err
	})

	// Another principal's lease; no lock right; an unknown lease; another N.
	deny := codes.PermissionDenied
	add("ReleaseSemaphore with another principal's lease", deny, "", func() error {
		_, err := rival.ReleaseSemaphore(ctx, &pb.ReleaseSemaphoreRequest{Semaphore: "sem.jobs", LeaseId: victim})
		return err
	})
	add("TryAcquireSemaphore with another principal's lease", deny, "", func() error {
		_, err := rival.TryAcquireSemaphore(ctx, &pb.TryAcquireSemaphoreRequest{Semaphore: "sem.other", Permits: 1, LeaseId: victim})
		return err
	})
	add("AcquireSemaphore with another principal's lease", deny, "", func() error {
		return first(rival.AcquireSemaphore(ctx, &pb.AcquireSemaphoreRequest{Semaphore: "sem.other", Permits: 1, LeaseId: victim}))
	})
	add("AcquireSemaphore without the lock right", deny, "", func() error {
		return first(reader.AcquireSemaphore(ctx, &pb.AcquireSemaphoreRequest{Semaphore: "sem.jobs", Permits: 1}))
	})
	add("TryAcquireSemaphore outside its scope", deny, "", func() error {
		_, err := web.TryAcquireSemaphore(ctx, &pb.TryAcquireSemaphoreRequest{Semaphore: "sem.jobs", Permits: 1, Ttl: ttl})
		return err
	})
	add("GetSemaphore without the read right", deny, "", func() error {
		_, err := worker.GetSemaphore(ctx, &pb.GetSemaphoreRequest{Semaphore: "sem.jobs"})
		return err
	})
	add("AcquireSemaphore under an unknown lease", codes.NotFound, "", func() error {
		return first(worker.AcquireSemaphore(ctx, &pb.AcquireSemaphoreRequest{Semaphore: "sem.ghost", Permits: 1,
			LeaseId: strings.Repeat("0", 32)}))
	})
	add("AcquireSemaphore with another N", codes.FailedPrecondition, "", func() error {
		return first(rival.AcquireSemaphore(ctx, &pb.AcquireSemaphoreRequest{Semaphore: "sem.jobs", Permits: 2}))
	})
	add("TryAcquireSemaphore with another N", codes.FailedPrecondition, "", func() error {
		_, err := rival.TryAcquireSemaphore(ctx, &pb.TryAcquireSemaphoreRequest{Semaphore: "sem.jobs", Permits: 3, Ttl: ttl})
		return err
	})

	checked := 0
	for _, c := range calls {
		err := c.do()
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
		if !strings.Contains(strings.Join(fields, " "), c.field) {
			t.Errorf("%s: violations name %q, want %q (%v)", c.name, fields, c.field, err)
		}
	}
	// The refused AcquireSemaphore and TryAcquireSemaphore with another N
	// and the ttl's lease made nothing that outlives them: the streams'
	// own leases are revoked in the background.
	// Under this gateway's root only: another test's lease, on another
	// root, may end meanwhile.
	zktest.Eventually(t, 10*time.Second, func() bool {
		added, removed := diff(before, tree(t, truth.Conn()))
		return len(under(lay.Root, added)) == 0 && len(under(lay.Root, removed)) == 0
	}, "ZooKeeper's tree under the gateway's root changed")
	g, err := reader.GetSemaphore(ctx, &pb.GetSemaphoreRequest{Semaphore: "sem.jobs"})
	if err != nil || len(g.GetHolders()) != 1 || g.GetHolders()[0].GetToken() != held.GetToken() {
		t.Fatalf("the victim's permit after the hostile calls: %v, %v", g, err)
	}
	t.Logf("%d hostile semaphore calls refused as expected; ZooKeeper's tree unchanged", checked)
}
