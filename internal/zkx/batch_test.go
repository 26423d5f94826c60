package zkx_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// batchGate holds each multi of a session's group commit until the test
// lets it go, and tells the test what each carries and how long the queue
// is, so a test can fill a batch without sleeping.
type batchGate struct {
	sent    chan sentBatch // one per multi, before it is sent
	proceed chan struct{}  // one token lets one multi go
	queued  chan int       // the queue's length after each Multi call joins it
	open    sync.Once
}

type sentBatch struct {
	calls int
	ops   []any
}

// gate holds s's multis at a gate, one batch in flight at a time (the
// tests written for one batch in flight; pipelined_test.go sets more).
func gate(t *testing.T, s *zkx.Session) *batchGate {
	zkx.SetBatchDepth(s, 1, 1)
	return gateDepth(t, s)
}

// gateDepth holds s's multis at a gate, at s's batch depth.
func gateDepth(t *testing.T, s *zkx.Session) *batchGate {
	g := &batchGate{sent: make(chan sentBatch, 64), proceed: make(chan struct{}), queued: make(chan int, 256)}
	zkx.SetBatchHooks(s, func(calls int, ops []any) {
		g.sent <- sentBatch{calls, ops}
		<-g.proceed
	}, func(n int) { g.queued <- n })
	t.Cleanup(g.openAll) // before the session's Close, which waits for the multi
	return g
}

// openAll lets every multi go from now on.
func (g *batchGate) openAll() { g.open.Do(func() { close(g.proceed) }) }

// first waits for a lone first call's multi to reach the gate, and for its
// report of the queue, so that later reports are the later calls'.
func (g *batchGate) first(t *testing.T) sentBatch {
	t.Helper()
	b := g.next(t)
	g.waitQueued(t, 1)
	return b
}

// next waits for the next multi to reach the gate.
func (g *batchGate) next(t *testing.T) sentBatch {
	t.Helper()
	select {
	case b := <-g.sent:
		return b
	case <-time.After(10 * time.Second):
		t.Fatal("no multi reached the gate")
		return sentBatch{}
	}
}

// waitQueued waits until n calls wait in the queue.
func (g *batchGate) waitQueued(t *testing.T, n int) {
	t.Helper()
	for {
		select {
		case got := <-g.queued:
			if got >= n {
				return
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("fewer than %d calls queued", n)
		}
	}
}

type multiResult struct {
	res []zk.MultiResponse
	err error
}

func goMulti(ctx context.Context, s *zkx.Session, ops ...any) <-chan multiResult {
	ch := make(chan multiResult, 1)
	go func() {
		res, err := s.MultiShared(ctx, ops...)
		ch <- multiResult{res, err}
	}()
	return ch
}

// TestGroupCommitIsolatesFailures: callers queued behind a multi in flight
// go as one batch; three of them must fail (a node that exists, a version
// check that does not match, a delete of a node that does not exist) and
// get exactly their own error, with nothing of theirs written, while the
// four others succeed together in one transaction, their shared version
// check and their touches of one node each sent once.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	s, lay := zktest.Session(t)
	ctx := context.Background()
	base := lay.Root + "/gc"
	for _, p := range []string{base, base + "/log", base + "/held", base + "/checked"} {
		if _, err := s.Create(ctx, p, nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	_, logBefore, err := s.Get(ctx, base+"/log")
	if err != nil {
		t.Fatal(err)
	}
	g := gate(t, s)
	create := func(name string) *zk.CreateRequest {
		return &zk.CreateRequest{Path: base + "/" + name, Acl: s.ACL()}
	}
	touch := &zk.SetDataRequest{Path: base + "/log", Version: -1}
	check := func(v int32) *zk.CheckVersionRequest {
		return &zk.CheckVersionRequest{Path: base + "/checked", Version: v}
	}

	first := goMulti(ctx, s, create("first"))
	if b := g.first(t); b.calls != 1 {
		t.Fatalf("first multi carries %d calls, want 1 (a lone caller goes alone)", b.calls)
	}
	cases := []struct {
		name string
		ops  []any
		want error
	}{
		{"a", []any{create("a"), touch, check(0)}, nil},
		{"exists", []any{create("x1"), create("held")}, zk.ErrNodeExists},
		{"b", []any{create("b"), touch, check(0)}, nil},
		{"badversion", []any{create("x2"), check(7)}, zk.ErrBadVersion},
		{"c", []any{create("c"), &zk.DeleteRequest{Path: base + "/first", Version: -1}, touch}, nil},
		{"nonode", []any{&zk.DeleteRequest{Path: base + "/missing", Version: -1}, create("x3")}, zk.ErrNoNode},
		{"d", []any{create("d"), touch}, nil},
	}
	results := make([]<-chan multiResult, len(cases))
	for i, c := range cases {
		results[i] = goMulti(ctx, s, c.ops...)
		g.waitQueued(t, i+1) // in this order, so the batch's order is known
	}
	g.proceed <- struct{}{}
	if r := <-first; r.err != nil {
		t.Fatal(r.err)
	}
	// Each failed batch answers the caller of its first failing
	// operation and sends the others again: 7, 6, 5, then the 4.
	var last sentBatch
	for _, want := range []int{7, 6, 5, 4} {
		last = g.next(t)
		if last.calls != want {
			t.Fatalf("batch carries %d calls, want %d", last.calls, want)
		}
		g.proceed <- struct{}{}
	}
	if len(last.ops) != 7 { // check, 4 creates, a delete, one touch (10 alone)
		t.Errorf("last batch has %d operations, want 7: %v", len(last.ops), last.ops)
	}
	var zxid int64
	for i, c := range cases {
		r := <-results[i]
		if c.want != nil {
			if !errors.Is(r.err, c.want) {
				t.Errorf("%s: got %v, want %v", c.name, r.err, c.want)
			}
			continue
		}
		if r.err != nil {
			t.Errorf("%s: %v", c.name, r.err)
			continue
		}
		if len(r.res) != len(c.ops) {
			t.Fatalf("%s: %d answers for %d operations", c.name, len(r.res), len(c.ops))
		}
		if got := r.res[0].String; got != base+"/"+c.name {
			t.Errorf("%s: first answer %q", c.name, got)
		}
		for j, op := range c.ops {
			if op == touch {
				if zxid == 0 {
					zxid = r.res[j].Stat.Mzxid
				} else if r.res[j].Stat.Mzxid != zxid {
					t.Errorf("%s: touch at zxid %d, another caller's at %d: not one transaction", c.name, r.res[j].Stat.Mzxid, zxid)
				}
			}
		}
	}
	for name, want := range map[string]bool{"a": true, "b": true, "c": true, "d": true, "first": false, "x1": false, "x2": false, "x3": false} {
		ok, _, err := s.Exists(ctx, base+"/"+name)
		if err != nil {
			t.Fatal(err)
		}
		if ok != want {
			t.Errorf("%s exists: %v, want %v", name, ok, want)
		}
	}
	_, logAfter, err := s.Get(ctx, base+"/log")
	if err != nil {
		t.Fatal(err)
	}
	if logAfter.Version != logBefore.Version+1 || logAfter.Mzxid != zxid {
		t.Errorf("log version %d -> %d at zxid %d (touches at %d): want one touch", logBefore.Version, logAfter.Version, logAfter.Mzxid, zxid)
	}
}

// TestGroupCommitContext: a caller whose ctx ends while it is queued is
// dropped from its batch (nothing of it is written); one whose batch is in
// flight gets its deadline, not a hang.
func TestGroupCommitContext(t *testing.T) {
	s, lay := zktest.Session(t)
	ctx := context.Background()
	base := lay.Root + "/gcctx"
	if _, err := s.Create(ctx, base, nil, 0); err != nil {
		t.Fatal(err)
	}
	g := gate(t, s)
	mk := func(name string) *zk.CreateRequest { return &zk.CreateRequest{Path: base + "/" + name, Acl: s.ACL()} }
	first := goMulti(ctx, s, mk("first"))
	g.first(t)

	gone, cancel := context.WithCancel(ctx)
	dropped := goMulti(gone, s, mk("dropped"))
	g.waitQueued(t, 1)
	cancel()
	if r := <-dropped; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("cancelled while queued: %v", r.err)
	}
	short, cancel2 := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel2()
	inflight := goMulti(short, s, mk("inflight"))
	g.waitQueued(t, 2)
	g.proceed <- struct{}{} // first goes; then the batch of "inflight" alone
	if r := <-first; r.err != nil {
		t.Fatal(r.err)
	}
	b := g.next(t)
	if b.calls != 1 || len(b.ops) != 1 || b.ops[0].(*zk.CreateRequest).Path != base+"/inflight" {
		t.Fatalf("second batch: %d calls, ops %v; want only inflight's create", b.calls, b.ops)
	}
	select {
	case r := <-inflight:
		if !errors.Is(r.err, context.DeadlineExceeded) {
			t.Fatalf("in flight past its deadline: %v", r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a call whose batch is in flight did not return at its deadline")
	}
	g.proceed <- struct{}{}
	if ok, _, err := s.Exists(ctx, base+"/dropped"); err != nil || ok {
		t.Errorf("dropped call's node exists: %v %v", ok, err)
	}
}

// TestGroupCommitClose: calls queued when the session closes get an error.
func TestGroupCommitClose(t *testing.T) {
	s, lay := zktest.Session(t)
	ctx := context.Background()
	g := gate(t, s)
	mk := func(i int) *zk.CreateRequest {
		return &zk.CreateRequest{Path: fmt.Sprintf("%s/close%d", lay.Root, i), Acl: s.ACL()}
	}
	var rs []<-chan multiResult
	rs = append(rs, goMulti(ctx, s, mk(0)))
	g.first(t)
	for i := 1; i <= 3; i++ {
		rs = append(rs, goMulti(ctx, s, mk(i)))
		g.waitQueued(t, i)
	}
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	g.openAll()
	for i, r := range rs {
		select {
		case got := <-r:
			if i > 0 && got.err == nil {
				t.Errorf("call %d queued at Close succeeded", i)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("call %d hangs after Close", i)
		}
	}
	<-closed
	if _, err := s.MultiShared(ctx, mk(9)); err == nil {
		t.Error("Multi after Close succeeded")
	}
}
