package server_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/testing/checker"
	"github.com/zkcoord/zkcoord/internal/testing/testenv"
	"github.com/zkcoord/zkcoord/internal/testing/testenv/httpc"
	"github.com/zkcoord/zkcoord/internal/validate"
)

// pageWriter registers and deregisters persistent members of one group,
// recording the acknowledged writes for checker.CheckPages.
type pageWriter struct {
	t     *testing.T
	reg   pb.RegistryServiceClient
	group string
	mu    sync.Mutex
	h     []checker.PageWrite
}

func (w *pageWriter) put(ctx context.Context, id, value string) {
	r, err := w.reg.Register(ctx, &pb.RegisterRequest{Group: w.group, MemberId: id, Value: value, Persistent: true})
	if err != nil {
		w.t.Errorf("Register %s: %v", id, err)
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.h = append(w.h, checker.PageWrite{ID: id, Value: value, Rev: r.Revision})
}

func (w *pageWriter) del(ctx context.Context, id string) {
	r, err := w.reg.Deregister(ctx, &pb.DeregisterRequest{Group: w.group, MemberId: id})
	if err != nil {
		w.t.Fatalf("Deregister %s: %v", id, err)
	}
	w.h = append(w.h, checker.PageWrite{ID: id, Del: true, Rev: r.Revision})
}

func pagedPB(ms []*pb.Member) []checker.PagedMember {
	out := make([]checker.PagedMember, len(ms))
	for i, m := range ms {
		out[i] = checker.PagedMember{ID: m.GetId(), Value: m.GetValue()}
	}
	return out
}

// TestLookupPagesAtOneRevision reads a group in pages, through the page
// tokens, while members join, leave and change between pages: the pages
// together are the group at the first page's revision. Bad page requests
// are refused and change nothing.
func TestLookupPagesAtOneRevision(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg := pb.NewRegistryServiceClient(testenv.Conn(t))
	w := &pageWriter{t: t, reg: reg, group: name(t)}
	for i := range 60 {
		w.put(ctx, fmt.Sprintf("m%02d", i), "v0")
	}
	p, err := reg.Lookup(ctx, &pb.LookupRequest{Group: w.group, PageSize: 7, Consistency: pb.Consistency_CONSISTENCY_LINEARIZABLE})
	if err != nil || p.NextPageToken == "" || len(p.Members) != 7 {
		t.Fatalf("first page: %d members, token %q, %v", len(p.GetMembers()), p.GetNextPageToken(), err)
	}
	rev, pages, first := p.Revision, [][]checker.PagedMember{pagedPB(p.Members)}, p.NextPageToken
	for i := 0; p.NextPageToken != ""; i++ {
		w.del(ctx, fmt.Sprintf("m%02d", 59-i))
		w.put(ctx, fmt.Sprintf("m%02d", 30+i), fmt.Sprint("v", i+1))
		w.put(ctx, fmt.Sprintf("z%02d", i), "late")
		if p, err = reg.Lookup(ctx, &pb.LookupRequest{Group: w.group, PageSize: 7, PageToken: p.NextPageToken}); err != nil {
			t.Fatalf("page %d: %v", i+1, err)
		}
		if p.Revision != rev {
			t.Fatalf("page %d at revision %d, the first at %d", i+1, p.Revision, rev)
		}
		pages = append(pages, pagedPB(p.Members))
	}
	if len(pages) != 9 {
		t.Errorf("%d pages of 7 for 60 members, want 9", len(pages))
	}
	if err := checker.CheckPages(pages, rev, w.h); err != nil {
		t.Fatal(err)
	}

	before, err := reg.Lookup(ctx, &pb.LookupRequest{Group: w.group, Consistency: pb.Consistency_CONSISTENCY_LINEARIZABLE})
	if err != nil || before.NextPageToken != "" {
		t.Fatalf("whole group in one default page: %v, token %q", err, before.GetNextPageToken())
	}
	tampered := []byte(first)
	tampered[len(tampered)-3] ^= 'A' ^ 'B' // inside the MAC
	if tampered[len(tampered)-3] == first[len(first)-3] {
		tampered[len(tampered)-3] = 'C'
	}
	for _, c := range []struct {
		what string
		req  *pb.LookupRequest
	}{
		{"garbage token", &pb.LookupRequest{Group: w.group, PageToken: "not-a-token"}},
		{"tampered token", &pb.LookupRequest{Group: w.group, PageToken: string(tampered)}},
		{"truncated token", &pb.LookupRequest{Group: w.group, PageToken: first[:len(first)-4]}},
		{"another group's token", &pb.LookupRequest{Group: w.group + "x", PageToken: first}},
		{"token with member_id", &pb.LookupRequest{Group: w.group, MemberId: "m01", PageToken: first}},
		{"token with wait", &pb.LookupRequest{Group: w.group, PageToken: first, Wait: durationpb.New(time.Second)}},
		{"long token", &pb.LookupRequest{Group: w.group, PageToken: strings.Repeat("a", 2000)}},
		{"negative page_size", &pb.LookupRequest{Group: w.group, PageSize: -1}},
		{"page_size over the maximum", &pb.LookupRequest{Group: w.group, PageSize: 50001}},
	} {
		_, err := reg.Lookup(ctx, c.req)
		wantCode(t, c.what, err, codes.InvalidArgument)
	}
	wantCode(t, "negative snapshot_page_size", recvErrWatch(reg.WatchGroup(ctx, &pb.WatchGroupRequest{Group: w.group, SnapshotPageSize: -1})), codes.InvalidArgument)
	after, err := reg.Lookup(ctx, &pb.LookupRequest{Group: w.group, Consistency: pb.Consistency_CONSISTENCY_LINEARIZABLE})
	if err != nil || after.Revision != before.Revision || len(after.Members) != len(before.Members) {
		t.Fatalf("refused requests changed the group: revision %d -> %d, %d -> %d members, %v",
			before.Revision, after.GetRevision(), len(before.Members), len(after.GetMembers()), err)
	}
}

func recvErrWatch(s pb.RegistryService_WatchGroupClient, err error) error {
	if err != nil {
		return err
	}
	_, err = s.Recv()
	return err
}

// TestPageTokenBoundToCallerAndReplica: a token is good only for the
// principal it was issued to (another principal with the same rights gets
// INVALID_ARGUMENT), and on another replica, once the group has changed,
// the revision is gone (OUT_OF_RANGE).
func TestPageTokenBoundToCallerAndReplica(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dial, _ := authGateway(t)
	web, other := pb.NewRegistryServiceClient(dial("web-token-0123456789")), pb.NewRegistryServiceClient(dial("other-token-0123456789"))
	for i := range 3 {
		if _, err := web.Register(ctx, &pb.RegisterRequest{Group: "app.pages", MemberId: fmt.Sprint("m", i), Value: "v", Persistent: true}); err != nil {
			t.Fatal(err)
		}
	}
	p, err := web.Lookup(ctx, &pb.LookupRequest{Group: "app.pages", PageSize: 1, Consistency: pb.Consistency_CONSISTENCY_LINEARIZABLE})
	if err != nil || p.NextPageToken == "" {
		t.Fatalf("first page: %v, %v", p, err)
	}
	_, err = other.Lookup(ctx, &pb.LookupRequest{Group: "app.pages", PageToken: p.NextPageToken})
	wantCode(t, "another principal's token", err, codes.InvalidArgument)
	if p2, err := web.Lookup(ctx, &pb.LookupRequest{Group: "app.pages", PageSize: 1, PageToken: p.NextPageToken}); err != nil || len(p2.Members) != 1 || p2.Members[0].Id != "m1" {
		t.Fatalf("the owner's next page: %v, %v", p2, err)
	}

	root := fmt.Sprintf("/%s-%d", name(t), time.Now().UnixNano())
	a, b := startReplica(t, root, "a"), startReplica(t, root, "b")
	regA, regB := pb.NewRegistryServiceClient(a.cc), pb.NewRegistryServiceClient(b.cc)
	for i := range 3 {
		if _, err := regA.Register(ctx, &pb.RegisterRequest{Group: "g", MemberId: fmt.Sprint("m", i), Value: "v", Persistent: true}); err != nil {
			t.Fatal(err)
		}
	}
	p, err = regA.Lookup(ctx, &pb.LookupRequest{Group: "g", PageSize: 1, Consistency: pb.Consistency_CONSISTENCY_LINEARIZABLE})
	if err != nil || p.NextPageToken == "" {
		t.Fatalf("first page on a: %v, %v", p, err)
	}
	if _, err := regA.Register(ctx, &pb.RegisterRequest{Group: "g", MemberId: "m9", Value: "v", Persistent: true}); err != nil {
		t.Fatal(err)
	}
	_, err = regB.Lookup(ctx, &pb.LookupRequest{Group: "g", PageToken: p.NextPageToken})
	wantCode(t, "a's token on b", err, codes.OutOfRange)
	if p2, err := regA.Lookup(ctx, &pb.LookupRequest{Group: "g", PageSize: 1, PageToken: p.NextPageToken}); err != nil || len(p2.Members) != 1 || p2.Revision != p.Revision {
		t.Fatalf("a's token on a, after a change: %v, %v", p2, err)
	}
}

// TestBigGroupDefaultLimits: a group whose whole snapshot exceeds gRPC's
// default 4 MiB message limit is read (Lookup pages) and watched (a paged
// snapshot, then live changes) by a client with default limits. A
// snapshot sent whole, as for clients that predate pages, is refused by
// that client, as before.
func TestBigGroupDefaultLimits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	reg := pb.NewRegistryServiceClient(testenv.Conn(t)) // default call options: 4 MiB receive limit
	group, n := name(t), 2400
	value := strings.Repeat("x", 2048)
	w := &pageWriter{t: t, reg: reg, group: group}
	var wg sync.WaitGroup
	for k := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := k; i < n; i += 32 {
				w.put(ctx, fmt.Sprintf("m%05d", i), value)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	// Without page_size the group is one answer, as before pages: over a
	// default client's limit, a clear RESOURCE_EXHAUSTED, never a part of
	// the group passed off as all of it.
	if _, err := reg.Lookup(ctx, &pb.LookupRequest{Group: group, Consistency: pb.Consistency_CONSISTENCY_LINEARIZABLE}); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("unpaged Lookup of a group over 4 MiB: %v, want RESOURCE_EXHAUSTED", err)
	}
	seen := map[string]bool{}
	req := &pb.LookupRequest{Group: group, Consistency: pb.Consistency_CONSISTENCY_LINEARIZABLE, PageSize: validate.MaxMemberPage}
	var rev int64
	total := 0
	for pages := 0; ; pages++ {
		p, err := reg.Lookup(ctx, req)
		if err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		if size := proto.Size(p); size > 3<<20 {
			t.Errorf("page %d of %d bytes", pages, size)
		}
		if pages == 0 {
			rev = p.Revision
		} else if p.Revision != rev {
			t.Fatalf("page %d at %d, first at %d", pages, p.Revision, rev)
		}
		for _, m := range p.Members {
			seen[m.Id] = true
		}
		total += proto.Size(p)
		if p.NextPageToken == "" {
			break
		}
		req = &pb.LookupRequest{Group: group, PageToken: p.NextPageToken}
	}
	if len(seen) != n || total <= 4<<20 {
		t.Fatalf("read %d members in %d bytes, want %d in more than 4 MiB", len(seen), total, n)
	}

	st, err := reg.WatchGroup(ctx, &pb.WatchGroupRequest{Group: group, SnapshotPageSize: 50000})
	if err != nil {
		t.Fatal(err)
	}
	got, pages := map[string]bool{}, 0
	for {
		m, err := st.Recv()
		if err != nil || m.Type != pb.WatchGroupResponse_TYPE_SNAPSHOT || m.Revision < rev {
			t.Fatalf("snapshot page %d: %v, %v", pages, m, err)
		}
		pages++
		for _, mb := range m.Members {
			got[mb.Id] = true
		}
		if !m.More {
			break
		}
	}
	if len(got) != n || pages < 2 {
		t.Fatalf("paged snapshot: %d members in %d pages, want %d in several", len(got), pages, n)
	}
	r, err := reg.Register(ctx, &pb.RegisterRequest{Group: group, MemberId: "new", Value: "v", Persistent: true})
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := st.Recv(); err != nil || ev.Type != pb.WatchGroupResponse_TYPE_JOINED || ev.Revision != r.Revision {
		t.Fatalf("after the snapshot: %v, %v; want new JOINED at %d", ev, err, r.Revision)
	}
	err = recvErrWatch(reg.WatchGroup(ctx, &pb.WatchGroupRequest{Group: group}))
	wantCode(t, "a whole snapshot over 4 MiB", err, codes.ResourceExhausted)
	checkBigWatch(t, ctx, reg, group, n+1)
}

// TestHTTPPagedSnapshot: over HTTP, ?snapshotPageSize= pages a watch's
// snapshot on the NDJSON stream: lines of one revision, all but the last
// with more.
func TestHTTPPagedSnapshot(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg := pb.NewRegistryServiceClient(testenv.Conn(t))
	group := name(t)
	for i := range 3 {
		if _, err := reg.Register(ctx, &pb.RegisterRequest{Group: group, MemberId: fmt.Sprint("m", i), Value: "v", Persistent: true}); err != nil {
			t.Fatal(err)
		}
	}
	c := httpc.Client{Base: testenv.HTTP(t)}
	w, r, err := c.OpenLines(ctx, "GET", "/v1/groups/"+group+":watch?snapshotPageSize=2", nil)
	if err != nil || w == nil {
		t.Fatalf("watch: %v %v", r, err)
	}
	defer w.Close()
	var ids []string
	var revs []string
	for more := true; more; {
		m, err := w.Next()
		if err != nil || str(m, "type") != "TYPE_SNAPSHOT" {
			t.Fatalf("snapshot line: %v, %v", m, err)
		}
		for _, mb := range m["members"].([]any) {
			ids = append(ids, str(mb.(map[string]any), "id"))
		}
		revs = append(revs, str(m, "revision"))
		more, _ = m["more"].(bool)
	}
	if strings.Join(ids, ",") != "m0,m1,m2" || len(revs) != 2 || revs[0] != revs[1] {
		t.Fatalf("paged snapshot: members %v in lines of revisions %v; want m0,m1 then m2 at one revision", ids, revs)
	}
}
