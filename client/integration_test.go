package client_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/client"
	zkcoordv1 "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/testing/testenv"
)

// These tests run against a real gateway on a real ZooKeeper, started once
// by testenv.Main. Each uses names of its own (see name).

func TestMain(m *testing.M) { testenv.Main(m) }

// waitTimeout bounds every wait of an integration test.
const waitTimeout = 20 * time.Second

// connect returns a Client of the test gateway, closed at cleanup.
func connect(t *testing.T) *client.Client {
	t.Helper()
	c, err := client.New(t.Context(), testenv.Gateway(t), client.WithBackoff(10*time.Millisecond, 200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// session returns a Session of c, closed at cleanup.
func session(t *testing.T, c *client.Client, opts ...client.SessionOption) *client.Session {
	t.Helper()
	s, err := c.NewSession(t.Context(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// name returns a group, election or barrier name unique to the test.
func name(t *testing.T, suffix string) string {
	r := strings.NewReplacer("/", ".", " ", "_", "#", "_")
	return r.Replace(fmt.Sprintf("%s.%s.%d", t.Name(), suffix, time.Now().UnixNano()))
}

// ctxT returns the test's context bounded by waitTimeout.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// nextState receives the next state of a watch.
func nextState(t *testing.T, ch <-chan client.GroupState) client.GroupState {
	t.Helper()
	select {
	case s, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed")
		}
		if s.Err != nil {
			t.Fatal(s.Err)
		}
		return s
	case <-time.After(waitTimeout):
		t.Fatal("timed out waiting for a group state")
		panic("unreachable")
	}
}

// waitMembers receives states until the group has exactly ids.
func waitMembers(t *testing.T, ch <-chan client.GroupState, ids ...string) client.GroupState {
	t.Helper()
	for {
		s := nextState(t, ch)
		var got []string
		for _, m := range s.List() {
			got = append(got, m.GetId())
		}
		if slices.Equal(got, ids) {
			return s
		}
	}
}

func TestGatewayRegistry(t *testing.T) {
	c := connect(t)
	s := session(t, c)
	ctx, group := ctxT(t), name(t, "g")

	watch := c.WatchGroup(ctx, group)
	if st := nextState(t, watch); len(st.Members) != 0 || st.Event.GetType() != zkcoordv1.WatchGroupResponse_TYPE_SNAPSHOT {
		t.Fatalf("first state %v, want an empty snapshot", st)
	}

	m, err := s.Register(ctx, group, "a", "10.0.0.1:80", client.WithMetadata(map[string]string{"zone": "z1"}))
	if err != nil {
		t.Fatal(err)
	}
	if m.GetId() != "a" || m.GetValue() != "10.0.0.1:80" || m.GetMetadata()["zone"] != "z1" || m.GetPersistent() {
		t.Fatalf("registered %v", m)
	}
	gen, err := s.Register(ctx, group, "", "10.0.0.2:80")
	if err != nil || gen.GetId() == "" {
		t.Fatalf("Register with a generated ID = %v, %v", gen, err)
	}
	st := waitMembers(t, watch, slices.Sorted(slices.Values([]string{"a", gen.GetId()}))...)
	if st.Members["a"].GetMetadata()["zone"] != "z1" {
		t.Fatalf("watched member a = %v", st.Members["a"])
	}

	members, rev, err := c.Lookup(ctx, group, client.Linearizable())
	if err != nil || len(members) != 2 || rev < st.Revision {
		t.Fatalf("Lookup = %v, %d, %v (watch at %d)", members, rev, err, st.Revision)
	}
	if paged, prev, err := c.Lookup(ctx, group, client.PageSize(1)); err != nil || len(paged) != 2 || prev != rev ||
		paged[0].GetId() >= paged[1].GetId() {
		t.Fatalf("Lookup in pages of 1 = %v, %d, %v; want both members at %d", paged, prev, err, rev)
	}
	if one, _, err := c.Lookup(ctx, group, client.Member("a")); err != nil || len(one) != 1 || one[0].GetValue() != "10.0.0.1:80" {
		t.Fatalf("Lookup(Member a) = %v, %v", one, err)
	}
	if _, _, err := c.Lookup(ctx, group, client.Member("nobody")); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("Lookup(Member nobody) = %v, want ErrNotFound", err)
	}

	// Updates and conflicts.
	if _, err := s.Register(ctx, group, "a", "10.0.0.1:81"); err != nil {
		t.Fatal(err)
	}
	if st := nextState(t, watch); st.Event.GetType() != zkcoordv1.WatchGroupResponse_TYPE_UPDATED || st.Members["a"].GetValue() != "10.0.0.1:81" {
		t.Fatalf("after update: %v", st.Event)
	}
	other := session(t, c)
	if _, err := other.Register(ctx, group, "a", "thief"); !errors.Is(err, client.ErrAlreadyExists) {
		t.Fatalf("Register of a taken ID = %v, want ErrAlreadyExists", err)
	}

	// Persistent and TTL members.
	if _, err := c.RegisterPersistent(ctx, group, "p", "db"); err != nil {
		t.Fatal(err)
	}
	_, lease, err := c.RegisterTTL(ctx, group, "t", "cron", 5*time.Second)
	if err != nil || lease == "" {
		t.Fatalf("RegisterTTL = %q, %v", lease, err)
	}
	if ttl, err := c.KeepAlive(ctx, lease); err != nil || ttl <= 0 {
		t.Fatalf("KeepAlive = %v, %v", ttl, err)
	}
	waitMembers(t, watch, slices.Sorted(slices.Values([]string{"a", gen.GetId(), "p", "t"}))...)
	if err := c.Revoke(ctx, lease); err != nil {
		t.Fatal(err)
	}
	if _, err := c.KeepAlive(ctx, lease); !errors.Is(err, client.ErrLeaseLost) {
		t.Fatalf("KeepAlive of a revoked lease = %v, want ErrLeaseLost", err)
	}
	if err := c.Deregister(ctx, group, "p", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Deregister(ctx, group, gen.GetId()); err != nil {
		t.Fatal(err)
	}
	waitMembers(t, watch, "a")

	// Closing the session removes what it owns.
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	waitMembers(t, watch)
}

func TestGatewaySessionRestoresRegistrations(t *testing.T) {
	c := connect(t)
	restored := make(chan string, 1)
	var restoreErr error
	s := session(t, c, client.WithTTL(2*time.Second), client.WithOnRestore(func(lease string, err error) {
		restoreErr = err
		restored <- lease
	}))
	ctx, group := ctxT(t), name(t, "g")
	watch := c.WatchGroup(ctx, group)
	nextState(t, watch)
	for _, id := range []string{"a", "b"} {
		if _, err := s.Register(ctx, group, id, "v-"+id); err != nil {
			t.Fatal(err)
		}
	}
	waitMembers(t, watch, "a", "b")

	// Someone revokes the lease: the members go, then come back.
	lost, old := s.Lost(), s.Lease()
	if err := c.Revoke(ctx, old); err != nil {
		t.Fatal(err)
	}
	waitMembers(t, watch)
	select {
	case <-lost:
	case <-time.After(waitTimeout):
		t.Fatal("Lost not closed")
	}
	var lease string
	select {
	case lease = <-restored:
	case <-time.After(waitTimeout):
		t.Fatal("no restore")
	}
	if restoreErr != nil || lease == old || lease != s.Lease() {
		t.Fatalf("restored lease %q (old %q, current %q), err %v", lease, old, s.Lease(), restoreErr)
	}
	waitMembers(t, watch, "a", "b")
	select {
	case <-s.Done():
		t.Fatal("session Done after a restore")
	default:
	}
}

func TestGatewayElection(t *testing.T) {
	c := connect(t)
	s1, s2 := session(t, c), session(t, c)
	ctx, election := ctxT(t), name(t, "e")

	observe := c.Observe(ctx, election)
	nextLeader := func() *zkcoordv1.LeaderInfo {
		t.Helper()
		select {
		case ev, ok := <-observe:
			if !ok || ev.Err != nil {
				t.Fatalf("observation ended: %v", ev.Err)
			}
			return ev.Leader
		case <-time.After(waitTimeout):
			t.Fatal("timed out observing")
			panic("unreachable")
		}
	}
	if l := nextLeader(); l != nil {
		t.Fatalf("leader of a new election: %v", l)
	}

	l1, err := s1.Campaign(ctx, election, "one")
	if err != nil {
		t.Fatal(err)
	}
	if l := nextLeader(); l.GetValue() != "one" || l.GetFencingToken() != l1.Token() {
		t.Fatalf("observed %v, want one with token %d", l, l1.Token())
	}
	if l, _, err := c.Leader(ctx, election); err != nil || l.GetCandidate() != l1.Candidate() {
		t.Fatalf("Leader = %v, %v", l, err)
	}

	queued := make(chan int, 10)
	type result struct {
		l   *client.Leadership
		err error
	}
	res := make(chan result, 1)
	go func() {
		l, err := s2.Campaign(ctx, election, "two", client.WithOnQueued(func(p int, _ *zkcoordv1.LeaderInfo) {
			select {
			case queued <- p:
			default:
			}
		}))
		res <- result{l, err}
	}()
	select {
	case p := <-queued:
		if p != 1 {
			t.Fatalf("queued at %d, want 1", p)
		}
	case <-time.After(waitTimeout):
		t.Fatal("second candidate not queued")
	}

	if err := l1.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	if err := context.Cause(l1.Context()); !errors.Is(err, client.ErrResigned) {
		t.Fatalf("first term ended with %v, want ErrResigned", err)
	}
	var r result
	select {
	case r = <-res:
	case <-time.After(waitTimeout):
		t.Fatal("second candidate not elected")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.l.Token() <= l1.Token() {
		t.Fatalf("token %d after %d: not increasing", r.l.Token(), l1.Token())
	}
	if l := nextLeader(); l.GetValue() != "two" {
		t.Fatalf("observed %v, want two", l)
	}

	// Closing the session ends the term.
	if err := s2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := context.Cause(r.l.Context()); !errors.Is(err, client.ErrSessionClosed) {
		t.Fatalf("second term ended with %v, want ErrSessionClosed", err)
	}
	if l := nextLeader(); l != nil {
		t.Fatalf("observed %v, want no leader", l)
	}
}

func TestGatewayCampaignCancelWithdraws(t *testing.T) {
	c := connect(t)
	s1, s2 := session(t, c), session(t, c)
	ctx, election := ctxT(t), name(t, "e")
	l1, err := s1.Campaign(ctx, election, "one")
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	_, err = s2.Campaign(cctx, election, "two", client.WithOnQueued(func(int, *zkcoordv1.LeaderInfo) { cancel() }))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Campaign = %v", err)
	}
	// The gateway withdraws the candidacy when it sees the stream go, which
	// may be after the leader resigns: then "two" leads for a moment.
	if err := l1.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	for ev := range c.Observe(ctx, election) {
		if ev.Err != nil {
			t.Fatal(ev.Err)
		}
		if ev.Leader == nil {
			return
		}
	}
	t.Fatal("the cancelled candidacy remained")
}

func TestGatewayBarrier(t *testing.T) {
	c := connect(t)
	ctx, barrier := ctxT(t), name(t, "b")
	const n = 3
	var wg sync.WaitGroup
	errs := make(chan error, n)
	var mu sync.Mutex
	maxArrived := 0
	for i := range n {
		s := session(t, c)
		wg.Go(func() {
			id, err := s.AwaitBarrier(ctx, barrier, n, client.WithParticipantID(fmt.Sprint("p", i)),
				client.WithProgress(func(have, want int) {
					mu.Lock()
					maxArrived = max(maxArrived, have)
					mu.Unlock()
				}))
			if err == nil && id != fmt.Sprint("p", i) {
				err = fmt.Errorf("participant %q, want p%d", id, i)
			}
			if err == nil {
				var released bool
				released, err = s.LeaveBarrier(ctx, barrier, id)
				if err == nil && !released {
					err = errors.New("LeaveBarrier: not released")
				}
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if maxArrived != n {
		t.Errorf("progress reached %d, want %d", maxArrived, n)
	}
}

func TestGatewayAwaitGroup(t *testing.T) {
	c := connect(t)
	s := session(t, c)
	ctx, group := ctxT(t), name(t, "g")
	counts := make(chan int, 1)
	done := make(chan error, 1)
	go func() {
		done <- c.AwaitGroup(ctx, group, 2, client.WithProgress(func(have, _ int) {
			select {
			case counts <- have:
			default:
			}
		}))
	}()
	select {
	case got := <-counts:
		if got != 0 {
			t.Fatalf("first count %d, want 0", got)
		}
	case <-time.After(waitTimeout):
		t.Fatal("no count from AwaitGroup")
	}
	for _, id := range []string{"a", "b"} {
		if _, err := s.Register(ctx, group, id, "v"); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("AwaitGroup did not return")
	}
}

func TestGatewayWatchGroupSeq(t *testing.T) {
	c := connect(t)
	s := session(t, c)
	ctx, group := ctxT(t), name(t, "g")
	if _, err := s.Register(ctx, group, "a", "1"); err != nil {
		t.Fatal(err)
	}
	for st, err := range c.WatchGroupSeq(ctx, group) {
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Members) == 2 {
			break
		}
		if _, err := s.Register(ctx, group, "b", "2"); err != nil {
			t.Fatal(err)
		}
	}
}
