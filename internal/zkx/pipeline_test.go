package zkx_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// The tests of this file run the group commit with several batches in
// flight (pipelined): a flight gate holds each multi's answer back, as a
// ZooKeeper that syncs slowly would, until the test lets it answer.

// flightGate holds the answer of each multi of a session until the test
// lets it go, and records the order in which multis entered the
// connection.
type flightGate struct {
	sent chan inFlight // one per multi, once it is in flight
	all  chan struct{} // closed: every multi goes at once
	open sync.Once

	mu    sync.Mutex
	order [][]any // each multi's operations, in the order they entered
}

// inFlight is one multi held in flight: closing release sends it.
type inFlight struct {
	ops     []any
	release chan struct{}
}

func (m inFlight) answer() { close(m.release) }

func flights(t *testing.T, s *zkx.Session, depth, early int) *flightGate {
	f := &flightGate{sent: make(chan inFlight, 64), all: make(chan struct{})}
	zkx.SetBatchDepth(s, depth, early)
	zkx.WrapBatchSend(s, func(send func([]any) ([]zk.MultiResponse, error)) func([]any) ([]zk.MultiResponse, error) {
		return func(ops []any) ([]zk.MultiResponse, error) {
			f.mu.Lock() // in the multi's turn: in the order multis enter
			f.order = append(f.order, ops)
			f.mu.Unlock()
			res, err := send(ops)
			m := inFlight{ops: ops, release: make(chan struct{})}
			f.sent <- m
			select {
			case <-m.release:
			case <-f.all:
			}
			return res, err
		}
	})
	t.Cleanup(f.openAll) // before the session's Close, which waits for the multis
	return f
}

func (f *flightGate) openAll() { f.open.Do(func() { close(f.all) }) }

func (f *flightGate) next(t *testing.T) inFlight {
	t.Helper()
	select {
	case m := <-f.sent:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no multi went in flight")
		return inFlight{}
	}
}

// TestGroupCommitPipelined: with a depth of 3, three lone callers' multis
// are in flight at once (none waits for another's answer); callers that
// come while all three are in flight queue and go together in the next
// batch, once one of the three has its answer.
func TestGroupCommitPipelined(t *testing.T) {
	s, lay := zktest.Session(t)
	ctx := context.Background()
	base := lay.Root + "/pipe"
	if _, err := s.Create(ctx, base, nil, 0); err != nil {
		t.Fatal(err)
	}
	f := flights(t, s, 3, 1)
	queued := make(chan int, 64)
	zkx.SetBatchHooks(s, nil, func(n int) { queued <- n })
	mk := func(name string) *zk.CreateRequest { return &zk.CreateRequest{Path: base + "/" + name, Acl: s.ACL()} }
	var rs []<-chan multiResult
	var held []inFlight
	for _, name := range []string{"a", "b", "c"} {
		rs = append(rs, goMulti(ctx, s, mk(name)))
		m := f.next(t)
		if len(m.ops) != 1 {
			t.Fatalf("multi for %s carries %d operations, want 1", name, len(m.ops))
		}
		held = append(held, m)
	}
	// Three multis in flight; the next two callers queue.
	for len(queued) > 0 {
		<-queued
	}
	for i, name := range []string{"d", "e"} {
		rs = append(rs, goMulti(ctx, s, mk(name)))
		waitQueue(t, queued, i+1)
	}
	held[1].answer() // b answers; its sender takes d and e
	if m := f.next(t); len(m.ops) != 2 {
		t.Fatalf("batch after the three carries %d operations, want 2 (d and e)", len(m.ops))
	}
	f.openAll()
	for i, r := range rs {
		if got := <-r; got.err != nil {
			t.Errorf("call %d: %v", i, got.err)
		}
	}
	kids, _, err := s.Children(ctx, base)
	if err != nil || len(kids) != 5 {
		t.Fatalf("children %v (%v), want 5", kids, err)
	}
}

// TestGroupCommitPipelinedFailure: a batch that fails while another is in
// flight answers only its failing caller; its other callers are sent
// again, while the other batch is still in flight, and succeed, as does
// the other batch.
func TestGroupCommitPipelinedFailure(t *testing.T) {
	s, lay := zktest.Session(t)
	ctx := context.Background()
	base := lay.Root + "/pipefail"
	for _, p := range []string{base, base + "/held"} {
		if _, err := s.Create(ctx, p, nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	f := flights(t, s, 2, 1)
	g := gateDepth(t, s) // the gate before each multi's turn: fills the third batch
	mk := func(name string) *zk.CreateRequest { return &zk.CreateRequest{Path: base + "/" + name, Acl: s.ACL()} }

	first := goMulti(ctx, s, mk("first"))
	g.first(t)
	g.proceed <- struct{}{}
	mFirst := f.next(t) // first in flight
	second := goMulti(ctx, s, mk("second"))
	g.next(t)
	g.waitQueued(t, 1)
	g.proceed <- struct{}{}
	mSecond := f.next(t) // second in flight: two in flight, the next callers queue
	a := goMulti(ctx, s, mk("a"))
	g.waitQueued(t, 1)
	bad := goMulti(ctx, s, mk("x"), mk("held"))
	g.waitQueued(t, 2)
	b := goMulti(ctx, s, mk("b"))
	g.waitQueued(t, 3)

	mFirst.answer() // its sender takes a, x and b
	if got := g.next(t); got.calls != 3 {
		t.Fatalf("third batch carries %d calls, want 3", got.calls)
	}
	g.proceed <- struct{}{}
	f.next(t).answer() // the third batch fails on held
	if got := g.next(t); got.calls != 2 {
		t.Fatalf("batch sent again carries %d calls, want 2 (a and b)", got.calls)
	}
	g.proceed <- struct{}{}
	f.next(t).answer() // a and b, sent again while second is still in flight
	if r := <-a; r.err != nil {
		t.Errorf("a: %v", r.err)
	}
	mSecond.answer()
	if r := <-bad; !errors.Is(r.err, zk.ErrNodeExists) {
		t.Errorf("failing caller: %v, want %v", r.err, zk.ErrNodeExists)
	}
	for name, r := range map[string]<-chan multiResult{"first": first, "second": second, "b": b} {
		if got := <-r; got.err != nil {
			t.Errorf("%s: %v", name, got.err)
		}
	}
	for name, want := range map[string]bool{"first": true, "second": true, "a": true, "b": true, "x": false} {
		if ok, _, err := s.Exists(ctx, base+"/"+name); err != nil || ok != want {
			t.Errorf("%s exists: %v (%v), want %v", name, ok, err, want)
		}
	}
}

// TestGroupCommitEntersInOrder: batches enter the connection in the order
// they were taken. A caller gives up on a create whose batch is taken but
// not yet sent, then deletes the node: the delete, in a later batch that
// a second sender takes at once, must not go before the create (it would
// find nothing, and the create would then leave the node behind). The
// create's batch, whose one caller has gone by its turn, is not sent at
// all: the delete finds nothing, and nothing is left behind.
func TestGroupCommitEntersInOrder(t *testing.T) {
	s, lay := zktest.Session(t)
	ctx := context.Background()
	base := lay.Root + "/order"
	if _, err := s.Create(ctx, base, nil, 0); err != nil {
		t.Fatal(err)
	}
	f := flights(t, s, 2, 1)
	f.openAll() // record the order only
	g := gateDepth(t, s)
	node := base + "/n"
	gone, cancel := context.WithCancel(ctx)
	created := goMulti(gone, s, &zk.CreateRequest{Path: node, Acl: s.ACL()})
	g.first(t) // taken, held before its turn
	cancel()
	if r := <-created; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("create given up: %v", r.err)
	}
	deleted := goMulti(ctx, s, &zk.DeleteRequest{Path: node, Version: -1})
	g.waitQueued(t, 1)
	select {
	case b := <-g.sent:
		t.Fatalf("a later batch (%v) reached its turn while the one taken before it was held", b.ops)
	case <-time.After(200 * time.Millisecond): // the second sender waits for the first's turn
	}
	g.proceed <- struct{}{}
	g.next(t)
	g.proceed <- struct{}{}
	if r := <-deleted; !errors.Is(r.err, zk.ErrNoNode) {
		t.Fatalf("delete after the given-up create: %v, want %v (the create not sent)", r.err, zk.ErrNoNode)
	}
	if ok, _, err := s.Exists(ctx, node); err != nil || ok {
		t.Fatalf("the node after it all: exists %v (%v), want gone", ok, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.order) != 1 {
		t.Fatalf("%d multis entered (%v), want 1: the delete", len(f.order), f.order)
	}
	if _, ok := f.order[0][0].(*zk.DeleteRequest); !ok {
		t.Errorf("the multi that entered: %v, want the delete", f.order[0])
	}
}

// TestGroupCommitEarlyOnlyWhenFull: while a batch is in flight, another
// goes at once only when enough calls have queued to be worth a request
// (here 3): the second and third callers wait, and go with the fourth in
// one batch, beside the first still in flight.
func TestGroupCommitEarlyOnlyWhenFull(t *testing.T) {
	s, lay := zktest.Session(t)
	ctx := context.Background()
	base := lay.Root + "/early"
	if _, err := s.Create(ctx, base, nil, 0); err != nil {
		t.Fatal(err)
	}
	f := flights(t, s, 2, 3)
	queued := make(chan int, 64)
	zkx.SetBatchHooks(s, nil, func(n int) { queued <- n })
	mk := func(name string) *zk.CreateRequest { return &zk.CreateRequest{Path: base + "/" + name, Acl: s.ACL()} }
	var rs []<-chan multiResult
	rs = append(rs, goMulti(ctx, s, mk("a")))
	first := f.next(t)
	for len(queued) > 0 {
		<-queued
	}
	for i, name := range []string{"b", "c", "d"} {
		rs = append(rs, goMulti(ctx, s, mk(name)))
		waitQueue(t, queued, i+1)
	}
	if m := f.next(t); len(m.ops) != 3 {
		t.Fatalf("batch sent beside the first carries %d operations (%v), want 3 (b, c, d)", len(m.ops), m.ops)
	}
	first.answer()
	f.openAll()
	for i, r := range rs {
		if got := <-r; got.err != nil {
			t.Errorf("call %d: %v", i, got.err)
		}
	}
}

// waitQueue waits until a report on queued says n calls wait.
func waitQueue(t *testing.T, queued <-chan int, n int) {
	t.Helper()
	for {
		select {
		case got := <-queued:
			if got >= n {
				return
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("fewer than %d calls queued", n)
		}
	}
}

// TestBatchEntersWhenWritten: with batches in flight together, a batch
// has entered the connection (and the next may take its turn) once
// go-zookeeper has written it, which the session's connection sees
// (order.go), not once it is answered: with ZooKeeper stalled, a create's
// batch is written and not answered, and a delete's batch taken after it
// comes to its turn; once ZooKeeper answers, they ran in that order.
func TestBatchEntersWhenWritten(t *testing.T) {
	px := zktest.NewProxy(t, zktest.Addr(t))
	s, lay := zktest.SessionThrough(t, px, zkx.WithSessionTimeout(20*time.Second))
	ctx := context.Background()
	node := lay.Root + "/written"
	zkx.SetBatchDepth(s, 2, 1)
	turns := make(chan []any, 4)
	zkx.SetBatchHooks(s, func(_ int, ops []any) { turns <- ops }, nil)
	turn := func(what string) {
		t.Helper()
		select {
		case <-turns:
		case <-time.After(10 * time.Second):
			t.Fatalf("the %s's batch did not come to its turn while ZooKeeper stalled", what)
		}
	}
	px.Stall()
	created := goMulti(ctx, s, &zk.CreateRequest{Path: node, Acl: s.ACL()})
	turn("create")
	deleted := goMulti(ctx, s, &zk.DeleteRequest{Path: node, Version: -1})
	turn("delete") // the create has entered: written, not answered
	select {
	case r := <-created:
		t.Fatalf("the create answered while ZooKeeper stalled: %v", r.err)
	default:
	}
	px.Restore()
	if r := <-created; r.err != nil {
		t.Fatalf("create: %v", r.err)
	}
	if r := <-deleted; r.err != nil {
		t.Fatalf("delete, after the create: %v", r.err)
	}
}

// TestMultiGivesUpBeforeItsTurn: with batches in flight together, a
// Session.Multi waits for its turn (the multi before it on the
// connection), and one whose ctx ends first returns ctx's error and is
// never sent: its create has not happened once the turn is free and a
// later multi has been answered.
func TestMultiGivesUpBeforeItsTurn(t *testing.T) {
	s, lay := zktest.Session(t)
	zkx.SetBatchDepth(s, 2, 1)
	node := lay.Root + "/never"
	release := zkx.HoldTurn(s)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := s.Multi(ctx, &zk.CreateRequest{Path: node, Acl: s.ACL()}); !errors.Is(err, context.DeadlineExceeded) {
		release()
		t.Fatalf("Multi while the turn is held: %v, want %v", err, context.DeadlineExceeded)
	}
	release()
	if _, err := s.Multi(context.Background(), &zk.CreateRequest{Path: lay.Root + "/after", Acl: s.ACL()}); err != nil {
		t.Fatalf("a Multi once the turn is free: %v", err)
	}
	if ok, _, err := s.Exists(context.Background(), node); err != nil || ok {
		t.Fatalf("the given-up create: exists %v (%v), want never sent", ok, err)
	}
}

// TestMultisGoStraightWhileDisconnected: with batches in flight together,
// while the session has no connection a multi does not wait for its turn
// (nothing would be written until a connection comes): with the turn held
// throughout, a Multi and a MultiShared made while ZooKeeper is cut off
// get go-zookeeper's own answer (its queue failed), not their deadline.
func TestMultisGoStraightWhileDisconnected(t *testing.T) {
	px := zktest.NewProxy(t, zktest.Addr(t))
	s, lay := zktest.SessionThrough(t, px, zkx.WithSessionTimeout(20*time.Second))
	zkx.SetBatchDepth(s, 2, 1)
	release := zkx.HoldTurn(s)
	defer release()
	px.Cut()
	zktest.Eventually(t, 10*time.Second, func() bool {
		st, _ := s.Watch()
		return st.State != zkx.StateConnected
	}, "the session disconnected")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := s.Multi(ctx, &zk.CreateRequest{Path: lay.Root + "/a", Acl: s.ACL()}); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Multi while disconnected, the turn held: %v, want go-zookeeper's error", err)
	}
	if _, err := s.MultiShared(ctx, &zk.CreateRequest{Path: lay.Root + "/b", Acl: s.ACL()}); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("MultiShared while disconnected, the turn held: %v, want go-zookeeper's error", err)
	}
}

// TestBatchesKeepOrderWhileDisconnected: with batches in flight together
// and the session disconnected, a batch lets the next go only once it has
// its answer, so the next cannot reach go-zookeeper's queue first: while
// the first batch is held on its way to the queue, the second does not
// come to its send.
func TestBatchesKeepOrderWhileDisconnected(t *testing.T) {
	px := zktest.NewProxy(t, zktest.Addr(t))
	s, lay := zktest.SessionThrough(t, px, zkx.WithSessionTimeout(20*time.Second))
	zkx.SetBatchDepth(s, 2, 1)
	sends := make(chan []any, 4)
	hold := make(chan struct{})
	let := sync.OnceFunc(func() { close(hold) })
	defer let() // before the session's close, which waits for the held batch
	var once sync.Once
	zkx.WrapBatchSend(s, func(send func([]any) ([]zk.MultiResponse, error)) func([]any) ([]zk.MultiResponse, error) {
		return func(ops []any) ([]zk.MultiResponse, error) {
			sends <- ops
			first := false
			once.Do(func() { first = true })
			if first {
				<-hold // the first batch, held before go-zookeeper's queue
			}
			return send(ops)
		}
	})
	px.Cut()
	zktest.Eventually(t, 10*time.Second, func() bool {
		st, _ := s.Watch()
		return st.State != zkx.StateConnected
	}, "the session disconnected")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	node := lay.Root + "/n"
	a := goMulti(ctx, s, &zk.CreateRequest{Path: node, Acl: s.ACL()})
	select {
	case <-sends:
	case <-time.After(10 * time.Second):
		t.Fatal("the first batch did not come to its send")
	}
	b := goMulti(ctx, s, &zk.DeleteRequest{Path: node, Version: -1})
	select {
	case ops := <-sends:
		t.Fatalf("a second batch (%v) came to its send while the first, taken before it, was not yet queued", ops)
	case <-time.After(200 * time.Millisecond):
	}
	let()
	px.Restore()
	<-a // either may fail (go-zookeeper fails its queue while no server answers)
	<-b
}
