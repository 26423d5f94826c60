package zkx

// Group commit: Session.MultiShared coalesces the transactions of
// concurrent callers into one ZooKeeper multi (DESIGN.md, "Group commit"),
// so they share its zxid.
//
// One batch is in flight at a time. A caller that finds none in flight
// starts one with its own transaction alone, at once (no timer: a lone
// caller waits for nothing); callers that come while it is in flight queue,
// and the next batch is whatever queued meanwhile. Each caller's operations
// stay one atomic unit. When a batch fails, ZooKeeper's per-operation
// results name the first operation that failed: the callers it belongs to
// get that failure (what their transaction alone would have had, run after
// the callers before it in the batch), and the others are sent again in the
// next batch, so one caller's failure never fails another's.

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
	res   []zk.MultiResponse
	err   error
	done  chan struct{}
}

// committer queues MultiShared calls and runs their batches, one in flight at a
// time, on a goroutine it starts when a call finds it idle and that ends
// when the queue is empty; close waits for it.
type committer struct {
	send    func(ops []any) ([]zk.MultiResponse, error)
	observe Observer

	mu     sync.Mutex
	queue  []*call
	busy   bool
	closed bool
	wg     sync.WaitGroup

	multis, calls atomic.Int64 // multis sent, calls they answered (GroupCommit)

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
	if !c.busy {
		c.busy = true
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

// close refuses new calls and waits for the batch goroutine, which ends
// once the connection (closed first by the Session) has answered the batch
// in flight and the calls still queued have their error.
func (c *committer) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.wg.Wait()
}

// run sends batches until the queue is empty.
func (c *committer) run() {
	defer c.wg.Done()
	for {
		c.mu.Lock()
		batch := c.take()
		if len(batch) == 0 {
			c.busy = false
			c.mu.Unlock()
			return
		}
		closed := c.closed
		c.mu.Unlock()
		var retry []*call
		if closed {
			for _, cl := range batch {
				c.finish(cl, nil, zk.ErrClosing)
			}
		} else {
			retry = c.commit(batch)
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
// again (a batch that failed for other calls' reasons).
func (c *committer) commit(batch []*call) []*call {
	if len(batch) == 1 { // alone: exactly the caller's transaction
		cl := batch[0]
		if c.beforeSend != nil {
			c.beforeSend(1, cl.ops)
		}
		res, err := c.send(cl.ops)
		c.multis.Add(1)
		c.finish(cl, res, err)
		return nil
	}
	p := planBatch(batch)
	if c.beforeSend != nil {
		c.beforeSend(len(batch), p.ops)
	}
	res, err := c.send(p.ops)
	c.multis.Add(1)
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

// GroupCommit reports how many multis MultiShared has sent so far, and how
// many calls they answered: calls/multis is the mean batch, and a batch
// that failed for one caller and was sent again counts twice.
func (s *Session) GroupCommit() (multis, calls int64) {
	return s.batch.multis.Load(), s.batch.calls.Load()
}

// finish answers a call and tells the observer how long it took.
func (c *committer) finish(cl *call, res []zk.MultiResponse, err error) {
	if c.observe != nil {
		c.observe(OpMulti, time.Since(cl.start), err)
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
