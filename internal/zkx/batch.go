package zkx

// Group commit: Session.MultiShared coalesces the transactions of
// concurrent callers into one ZooKeeper multi (DESIGN.md, "Group commit"),
// so they share its zxid.
//
// Up to WithWritePipeline's depth of batches (DefaultWritePipeline unless
// set) are in flight at a time,
// pipelined on the one connection (ZooKeeper applies a session's requests
// in the order they were sent, and batches enter the connection in the
// order they were taken from the queue). A caller that finds none in
// flight starts one at once (no timer: a lone caller waits for nothing);
// callers that come while some are in flight queue, and the next batch is
// whatever queued meanwhile: sent when a batch in flight is answered, or
// at once when batchEarly calls are queued and fewer than the pipeline's depth are
// in flight. Each caller's operations stay one atomic unit. When a batch
// fails, ZooKeeper's per-operation results name the first operation that
// failed: the callers it belongs to get that failure (what their
// transaction alone would have had, run after the callers before it in
// the batch), and the others are sent again in the next batch, so one
// caller's failure never fails another's.

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"
)

// Batch bounds: a batch takes callers in arrival order while it stays
// within both (a caller bigger than both alone is sent alone).
const (
	batchMaxOps   = 1000      // operations in one multi
	batchMaxBytes = 512 << 10 // estimated request size, well under ZooKeeper's jute.maxbuffer (1 MiB)
)

// The pipeline: how many batches may be in flight at once (unless
// WithWritePipeline says otherwise), and how many calls must be queued
// before one more goes while others are in flight. With one batch in
// flight, each waits for the whole round trip of the one before; with
// two, ZooKeeper can prepare and apply one while it syncs the other. But
// each multi costs ZooKeeper a request's work on top of its operations',
// so a batch sent early must be worth a request: smaller ones wait for an
// answer. Two by default: on the benchmark's 2-core machine, two in flight
// against one gave 18 % more Register+Deregister pairs a second at 16
// callers and 16 % lower latency, at the same ZooKeeper and gateway CPU
// per pair (BENCHMARKS.md, "Tenth stop of issue 15"); four gave smaller
// batches and more ZooKeeper CPU per write ("Pipelined group commit").
const (
	DefaultWritePipeline = 2
	batchEarly           = 8
)

// call states: the committer takes a queued call, or the caller abandons it
// when its ctx ends first; whichever swaps first decides.
const (
	callQueued int32 = iota
	callTaken
	callAbandoned
)

// call is one caller's transaction waiting for its batch.
type call struct {
	ctx   context.Context
	ops   []any
	size  int
	state atomic.Int32
	start time.Time
	sent  time.Time // when its last batch was sent
	res   []zk.MultiResponse
	err   error
	done  chan struct{}
}

// committer queues MultiShared calls and runs their batches, up to depth
// in flight at a time, each sender on a goroutine it starts when a call
// finds fewer than depth running, and that ends when the queue is empty;
// close waits for them.
type committer struct {
	send    func(ops []any) ([]zk.MultiResponse, error)
	order   *multiOrder // the session's, for batches in flight together (depth > 1)
	observe Observer
	depth   int // batches in flight at most (WithWritePipeline)
	early   int // calls queued that send one more batch while others are in flight

	mu      sync.Mutex
	queue   []*call
	senders int           // sender goroutines running
	entered chan struct{} // closed once the last batch taken has entered the connection
	closed  bool
	wg      sync.WaitGroup

	multis, calls    atomic.Int64 // multis sent, calls they answered (GroupCommit)
	waitNs, flightNs atomic.Int64 // ns: calls' time queued and in flight (GroupCommit)

	// test hooks (export_test.go): before each send, and after each
	// enqueue with the queue's length; nil in production.
	beforeSend func(calls int, ops []any)
	queued     func(n int)
}

// do runs ops as one atomic unit in the next batch. When ctx ends before
// the batch is sent the call is dropped from it; when ctx ends while the
// batch is in flight do returns ctx's error at once and the outcome is
// unknown (as with any write whose caller gave up).
func (c *committer) do(ctx context.Context, ops []any) ([]zk.MultiResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cl := &call{ctx: ctx, ops: ops, size: opsSize(ops), start: time.Now(), done: make(chan struct{})}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, zk.ErrClosing
	}
	c.queue = append(c.queue, cl)
	if c.queued != nil {
		c.queued(len(c.queue))
	}
	if c.senders == 0 || c.senders < c.depth && len(c.queue) >= c.early {
		c.senders++
		c.wg.Add(1)
		go c.run()
	}
	c.mu.Unlock()
	select {
	case <-cl.done:
		return cl.res, cl.err
	case <-ctx.Done():
		cl.state.CompareAndSwap(callQueued, callAbandoned)
		return nil, ctx.Err()
	}
}

// close refuses new calls and waits for the sender goroutines, which end
// once the connection (closed first by the Session) has answered the
// batches in flight and the calls still queued have their error.
func (c *committer) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.wg.Wait()
}

// run sends batches until the queue is empty. Batches enter the
// connection in the order they were taken: each waits until the one taken
// before it has entered (prev), so that a caller's later call, taken after
// its earlier one, is never sent before it (which could happen when the
// earlier call's caller gave up while its batch was being sent).
func (c *committer) run() {
	defer c.wg.Done()
	for {
		c.mu.Lock()
		batch := c.take()
		if len(batch) == 0 {
			c.senders--
			c.mu.Unlock()
			return
		}
		closed := c.closed
		prev, mine := c.entered, make(chan struct{})
		c.entered = mine
		c.mu.Unlock()
		if prev != nil {
			<-prev
		}
		var retry []*call
		if closed {
			close(mine)
			for _, cl := range batch {
				c.finish(cl, nil, zk.ErrClosing)
			}
		} else {
			retry = c.commit(batch, mine)
		}
		if len(retry) > 0 {
			for _, cl := range retry {
				cl.state.Store(callQueued)
			}
			c.mu.Lock()
			c.queue = append(retry, c.queue...)
			c.mu.Unlock()
		}
	}
}

// take removes the next batch from the queue (c.mu held): calls in arrival
// order while the batch stays within its bounds, skipping those whose
// caller has gone.
func (c *committer) take() []*call {
	var batch []*call
	ops, size, n := 0, 0, 0
	for n < len(c.queue) {
		cl := c.queue[n]
		if len(batch) > 0 && (ops+len(cl.ops) > batchMaxOps || size+cl.size > batchMaxBytes) {
			break
		}
		n++
		if cl.ctx.Err() != nil || !cl.state.CompareAndSwap(callQueued, callTaken) {
			continue // its caller returned ctx's error already
		}
		batch = append(batch, cl)
		ops += len(cl.ops)
		size += cl.size
	}
	c.queue = c.queue[n:]
	return batch
}

// commit sends one batch and answers its calls, returning those to send
// again (a batch that failed for other calls' reasons). It closes entered
// as the batch enters the connection.
func (c *committer) commit(batch []*call, entered chan struct{}) []*call {
	if len(batch) == 1 { // alone: exactly the caller's transaction
		cl := batch[0]
		res, err := c.sendBatch(batch, cl.ops, entered)
		c.finish(cl, res, err)
		return nil
	}
	p := planBatch(batch)
	res, err := c.sendBatch(batch, p.ops, entered)
	failed := -1
	if err != nil && len(res) == len(p.ops) {
		for i, r := range res {
			if r.Error != nil {
				failed = i
				break
			}
		}
	}
	if err != nil && failed < 0 { // no per-operation answer: the request itself failed
		for _, cl := range batch {
			c.finish(cl, nil, err)
		}
		return nil
	}
	var retry []*call
	for i, cl := range batch {
		switch {
		case err == nil:
			c.finish(cl, p.split(res, i), nil)
		case p.uses(i, failed):
			c.finish(cl, p.split(res, i), res[failed].Error)
		default:
			retry = append(retry, cl)
		}
	}
	return retry
}

// pipelined reports whether batches may be in flight together: then
// every multi of the session enters the connection through c.order.
func (c *committer) pipelined() bool { return c.depth > 1 }

// sendBatch sends ops, the multi of batch, closing entered once it is on
// the connection (multiOrder, order.go), so that the next batch enters
// after it. With one batch in flight at a time it goes straight to
// go-zookeeper: the next is taken only once this one has its answer. A
// batch whose callers have all given up by its turn is not sent (errGone).
func (c *committer) sendBatch(batch []*call, ops []any, entered chan struct{}) ([]zk.MultiResponse, error) {
	if c.beforeSend != nil {
		c.beforeSend(len(batch), ops)
	}
	now := time.Now()
	for _, cl := range batch {
		cl.sent = now
	}
	var res []zk.MultiResponse
	var err error
	if c.pipelined() {
		live := func() bool {
			for _, cl := range batch {
				if cl.ctx.Err() == nil {
					return true
				}
			}
			return false
		}
		res, err = c.order.do(context.Background(), ops, func() { close(entered) }, live, c.send)
	} else {
		close(entered)
		res, err = c.send(ops)
	}
	c.multis.Add(1)
	return res, err
}

// GroupCommitStats counts MultiShared's group commit since the session
// began.
type GroupCommitStats struct {
	// Multis is how many multis it sent, Calls how many calls they
	// answered: Calls/Multis is the mean batch; a call whose batch failed
	// for another caller's operation and was sent again counts in two.
	Multis, Calls int64
	// Queued sums the answered calls' time from MultiShared to their last
	// batch's send, InFlight their time from that send to the answer.
	Queued, InFlight time.Duration
}

// GroupCommit reports the session's group commit counts.
func (s *Session) GroupCommit() GroupCommitStats {
	b := s.batch
	return GroupCommitStats{Multis: b.multis.Load(), Calls: b.calls.Load(),
		Queued: time.Duration(b.waitNs.Load()), InFlight: time.Duration(b.flightNs.Load())}
}

// finish answers a call and tells the observer how long it took.
func (c *committer) finish(cl *call, res []zk.MultiResponse, err error) {
	now := time.Now()
	if c.observe != nil {
		c.observe(OpMulti, now.Sub(cl.start), err)
	}
	if !cl.sent.IsZero() {
		c.waitNs.Add(int64(cl.sent.Sub(cl.start)))
		c.flightNs.Add(int64(now.Sub(cl.sent)))
	}
	c.calls.Add(1)
	cl.res, cl.err = res, err
	close(cl.done)
}

// opsSize estimates the bytes an operation list adds to a request.
func opsSize(ops []any) int {
	n := 0
	for _, op := range ops {
		n += 32
		switch o := op.(type) {
		case *zk.CreateRequest:
			n += len(o.Path) + len(o.Data) + 64*len(o.Acl)
		case *zk.SetDataRequest:
			n += len(o.Path) + len(o.Data)
		case *zk.DeleteRequest:
			n += len(o.Path)
		case *zk.CheckVersionRequest:
			n += len(o.Path)
		}
	}
	return n
}
