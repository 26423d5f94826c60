package server_test

import (
	"context"
	"path"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/testing/testenv"
	"github.com/zkcoord/zkcoord/internal/zkserver"
)

type candidateStream struct {
	lease  string
	stream grpc.ServerStreamingClient[pb.CampaignResponse]
	name   string
}

// until receives campaign responses until one has the wanted status.
func (c *candidateStream) until(t *testing.T, want pb.CampaignResponse_Status) *pb.CampaignResponse {
	t.Helper()
	for {
		r, err := c.stream.Recv()
		if err != nil {
			t.Fatalf("candidate %s: %v before %v", c.name, err, want)
		}
		if r.Status == want {
			return r
		}
		if r.Status != pb.CampaignResponse_STATUS_QUEUED {
			t.Fatalf("candidate %s: %v while waiting for %v", c.name, r, want)
		}
	}
}

// wchp parses ZooKeeper's `wchp`: watched path → sessions watching it.
func wchp(t *testing.T) map[string]int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := zkserver.FourLetter(ctx, testenv.ZooKeeper(t), "wchp")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int{}
	cur := ""
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.TrimSpace(line) == "":
		case line[0] == '\t' || line[0] == ' ':
			m[cur]++
		default:
			cur = line
		}
	}
	return m
}

// TestElection20Candidates is the acceptance check, through gRPC:
// 20 candidates, one watch on each candidate znode, the next
// leader ELECTED within 100 ms of a resign and within its TTL after a client
// vanishes, and fencing tokens strictly increasing.
func TestElection20Candidates(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	election := name(t)
	cc := testenv.Conn(t)
	leases := pb.NewLeaseServiceClient(cc)
	el := pb.NewElectionServiceClient(cc)
	const n = 20
	const vanishTTL = 2 * time.Second
	cands := make([]*candidateStream, n)
	for i := range cands {
		ttl := time.Minute
		if i == n-2 { // this client will vanish once it leads
			ttl = vanishTTL
		}
		g, err := leases.Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(ttl)})
		if err != nil {
			t.Fatal(err)
		}
		s, err := el.Campaign(ctx, &pb.CampaignRequest{Election: election, Value: "node-" + string(rune('a'+i)), LeaseId: g.LeaseId})
		if err != nil {
			t.Fatal(err)
		}
		c := &candidateStream{lease: g.LeaseId, stream: s}
		want := pb.CampaignResponse_STATUS_QUEUED
		if i == 0 {
			want = pb.CampaignResponse_STATUS_ELECTED
		}
		r, err := s.Recv()
		if err != nil || r.Status != want || (i > 0 && int(r.Position) != i) {
			t.Fatalf("candidate %d first response %v, %v", i, r, err)
		}
		c.name = r.Candidate
		cands[i] = c
	}
	// The vanishing client keeps its lease alive until it leads.
	vanish := make(chan struct{})
	kept := make(chan struct{})
	go func() {
		defer close(kept)
		tick := time.NewTicker(vanishTTL / 4)
		defer tick.Stop()
		for {
			select {
			case <-vanish:
				return
			case <-tick.C:
				if _, err := leases.KeepAlive(ctx, &pb.KeepAliveRequest{LeaseId: cands[n-2].lease}); err != nil {
					t.Errorf("keepalive: %v", err)
					return
				}
			}
		}
	}()
	defer func() { <-kept }()
	var stopOnce sync.Once
	stopKeeping := func() { stopOnce.Do(func() { close(vanish) }) }
	defer stopKeeping() // first, on a failure before the vanishing: the keepalives end, and the wait for them above does

	// Herd avoidance: exactly one watch on each candidate znode: a waiting
	// candidate watches its predecessor and itself (to take over with no
	// read), and ZooKeeper keeps one data watch per znode and session, so
	// the last candidate's own watch is the only one beyond the
	// predecessors'.
	st, err := pb.NewStatusServiceClient(cc).GetStatus(ctx, &pb.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	dir := path.Join(st.Root, "elections", election)
	w := wchp(t)
	var watched []string
	for p, sessions := range w {
		if strings.HasPrefix(p, dir+"/") {
			watched = append(watched, p)
			if sessions != 1 {
				t.Errorf("%s watched by %d sessions", p, sessions)
			}
		}
	}
	sort.Strings(watched)
	if len(watched) != n {
		t.Fatalf("%d candidate znodes watched, want %d: %v", len(watched), n, watched)
	}
	for i := range n {
		if w[path.Join(dir, cands[i].name)] != 1 {
			t.Fatalf("candidate %d (%s) not watched exactly once", i, cands[i].name)
		}
	}
	t.Logf("wchp: %d candidate znodes watched, one session each", len(watched))

	// Resign the leader repeatedly: the next one is ELECTED within 100 ms.
	tokens := []int64{}
	r0, _ := el.Leader(ctx, &pb.LeaderRequest{Election: election})
	tokens = append(tokens, r0.Leader.FencingToken)
	var worst time.Duration
	for i := 0; i < n-3; i++ {
		start := time.Now()
		if _, err := el.Resign(ctx, &pb.ResignRequest{Election: election, LeaseId: cands[i].lease}); err != nil {
			t.Fatal(err)
		}
		next := cands[i+1].until(t, pb.CampaignResponse_STATUS_ELECTED)
		took := time.Since(start)
		worst = max(worst, took)
		if took > 100*time.Millisecond {
			t.Fatalf("candidate %d elected %v after the resign of %d", i+1, took, i)
		}
		if next.FencingToken <= tokens[len(tokens)-1] {
			t.Fatalf("token %d after %d", next.FencingToken, tokens[len(tokens)-1])
		}
		tokens = append(tokens, next.FencingToken)
		cands[i].until(t, pb.CampaignResponse_STATUS_RESIGNED)
	}
	t.Logf("resign -> next ELECTED: worst %v over %d handovers", worst, n-3)

	// The leader (n-3) resigns and the next (n-2) is a client that vanished:
	// it leads until its TTL lapses, then n-1 is elected.
	if _, err := el.Resign(ctx, &pb.ResignRequest{Election: election, LeaseId: cands[n-3].lease}); err != nil {
		t.Fatal(err)
	}
	cands[n-2].until(t, pb.CampaignResponse_STATUS_ELECTED)
	stopKeeping()
	<-kept
	vanished := time.Now() // no keepalive after this
	last := cands[n-1].until(t, pb.CampaignResponse_STATUS_ELECTED)
	if took := time.Since(vanished); took > vanishTTL+time.Second {
		t.Fatalf("next leader elected %v after the leader's client vanished (TTL %v)", took, vanishTTL)
	} else {
		t.Logf("leader's client vanished: next ELECTED after %v (TTL %v)", took, vanishTTL)
	}
	if last.FencingToken <= tokens[len(tokens)-1] {
		t.Fatalf("token %d after %d", last.FencingToken, tokens[len(tokens)-1])
	}
	if r := cands[n-2].until(t, pb.CampaignResponse_STATUS_LOST); r.FencingToken == 0 {
		t.Fatalf("LOST without the term's token: %v", r)
	}
}

// TestCampaignStreamOwned: without a lease, the candidacy belongs to the
// stream: cancelling it elects the next candidate; Observe and Leader follow,
// including the no-leader state.
func TestCampaignStreamOwned(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	election := name(t)
	el := pb.NewElectionServiceClient(testenv.Conn(t))
	obs, err := el.Observe(ctx, &pb.ObserveRequest{Election: election})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := obs.Recv(); err != nil || r.Leader != nil {
		t.Fatalf("Observe at start = %v, %v", r, err)
	}
	actx, acancel := context.WithCancel(ctx)
	a, _ := el.Campaign(actx, &pb.CampaignRequest{Election: election, Value: "a"})
	ra, err := a.Recv()
	if err != nil || ra.Status != pb.CampaignResponse_STATUS_ELECTED || ra.LeaseId == "" {
		t.Fatalf("a = %v, %v", ra, err)
	}
	b, _ := el.Campaign(ctx, &pb.CampaignRequest{Election: election, Value: "b"})
	if rb, err := b.Recv(); err != nil || rb.Status != pb.CampaignResponse_STATUS_QUEUED || rb.Leader.GetValue() != "a" {
		t.Fatalf("b = %v, %v", rb, err)
	}
	for {
		r, err := obs.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if r.Leader.GetValue() == "a" {
			break
		}
	}
	acancel() // the client of a goes away
	bc := &candidateStream{stream: b, name: "b"}
	rb := bc.until(t, pb.CampaignResponse_STATUS_ELECTED)
	if rb.FencingToken <= ra.FencingToken {
		t.Fatalf("token %d after %d", rb.FencingToken, ra.FencingToken)
	}
	ld, err := el.Leader(ctx, &pb.LeaderRequest{Election: election})
	if err != nil || ld.Leader.GetValue() != "b" || ld.Leader.FencingToken != rb.FencingToken {
		t.Fatalf("Leader = %v, %v", ld, err)
	}
	if _, err := el.Resign(ctx, &pb.ResignRequest{Election: election, LeaseId: rb.LeaseId}); err != nil {
		t.Fatal(err)
	}
	bc.until(t, pb.CampaignResponse_STATUS_RESIGNED)
	for seenB := false; ; {
		r, err := obs.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if r.Leader.GetValue() == "b" {
			seenB = true
		}
		if seenB && r.Leader == nil {
			break
		}
	}
	if ld, _ := el.Leader(ctx, &pb.LeaderRequest{Election: election}); ld.Leader != nil {
		t.Fatalf("Leader after all left = %v", ld.Leader)
	}
}

// TestCampaignNewValue: a Campaign with the lease of a leader and a new
// value keeps the term and publishes the value to Leader and Observe.
func TestCampaignNewValue(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cc := testenv.Conn(t)
	el, leases := pb.NewElectionServiceClient(cc), pb.NewLeaseServiceClient(cc)
	election := name(t)
	g, err := leases.Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	obs, err := el.Observe(ctx, &pb.ObserveRequest{Election: election})
	if err != nil {
		t.Fatal(err)
	}
	campaign := func(value string) *pb.CampaignResponse {
		t.Helper()
		s, err := el.Campaign(ctx, &pb.CampaignRequest{Election: election, Value: value, LeaseId: g.LeaseId})
		if err != nil {
			t.Fatal(err)
		}
		return (&candidateStream{lease: g.LeaseId, stream: s, name: value}).until(t, pb.CampaignResponse_STATUS_ELECTED)
	}
	first := campaign("node-a:9000")
	second := campaign("node-a:9100")
	if second.FencingToken != first.FencingToken || second.Candidate != first.Candidate || second.Leader.GetValue() != "node-a:9100" {
		t.Fatalf("Campaign with a new value: %v; want the term of %v with value node-a:9100", second, first)
	}
	if r, err := el.Leader(ctx, &pb.LeaderRequest{Election: election}); err != nil || r.Leader.GetValue() != "node-a:9100" {
		t.Fatalf("Leader = %v, %v; want value node-a:9100", r, err)
	}
	for {
		r, err := obs.Recv()
		if err != nil {
			t.Fatalf("Observe: %v before the new value", err)
		}
		if r.Leader.GetValue() == "node-a:9100" {
			break
		}
	}
	if _, err := el.Resign(ctx, &pb.ResignRequest{Election: election, LeaseId: g.LeaseId}); err != nil {
		t.Fatal(err)
	}
}
