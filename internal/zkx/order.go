package zkx

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"
)

// go-zookeeper queues a request and waits for its answer in one call
// (Conn.Multi), so a caller cannot tell when its request has taken its
// place on the connection: two goroutines calling Multi one just after the
// other may enter it in either order. The group commit with several
// batches in flight needs that order (batch.go: a batch enters after the
// one taken before it), so then a Session sends its multis through a
// multiOrder: one multi at a time goes from its turn to its write on the
// connection, which orderedConn, wrapping the connections go-zookeeper
// dials, sees. ZooKeeper runs a session's requests in the order they
// arrive. With one batch in flight (WithWritePipeline(1); the default is
// DefaultWritePipeline) a batch is taken only once the one before has its
// answer, and multis go straight to go-zookeeper.

// errGone: every caller of a multi gave up before its turn; it was not
// sent.
var errGone = errors.New("zkx: every caller gave up before the multi's turn")

// multiOrder lets the session's multis enter the connection one at a
// time while the session is connected. While it is not, nothing is
// written until a connection comes, and go-zookeeper fails what waits in
// its queue when a round of the servers fails: multis then go straight to
// that queue rather than wait one behind another for writes that cannot
// happen, and a batch lets the next follow only once it has its answer.
// Such a multi, sent without a turn, may still wait in go-zookeeper's
// queue when the session counts as connected again (go-zookeeper reports
// the new session before its sending goroutine starts): written then, it
// would end early the turn of whichever multi held it, and each write
// after would end the next turn early. So a multi that takes its turn
// first waits until every multi sent without one has its answer
// (unturned). Left: a multi sent through Conn, outside the turns.
type multiOrder struct {
	turn    chan struct{}          // one slot: held from a multi's turn until its write (or its return, unwritten)
	pending atomic.Pointer[func()] // the entering multi's release, for orderedConn
	// up reports whether the session is connected, and a channel closed
	// at its next change.
	up func() (bool, <-chan struct{})

	mu       sync.Mutex
	unturned int           // multis going, or deciding whether to go, without a turn
	drained  chan struct{} // made for a multi waiting for unturned to fall to 0, closed then

	// test hook (order_test.go): called when a multi holding its turn
	// starts waiting for the multis sent without one; nil in production.
	waitUnturned func()
}

// goUnturned counts a multi that may go without a turn: counted before it
// looks at the session's state, so that a multi taking its turn after
// that look sees it.
func (o *multiOrder) goUnturned() {
	o.mu.Lock()
	o.unturned++
	o.mu.Unlock()
}

// doneUnturned uncounts it: answered, not sent, or going with a turn.
func (o *multiOrder) doneUnturned() {
	o.mu.Lock()
	o.unturned--
	if o.unturned == 0 && o.drained != nil {
		close(o.drained)
		o.drained = nil
	}
	o.mu.Unlock()
}

// unturnedDrained is nil when no multi goes without a turn, otherwise a
// channel closed once none does.
func (o *multiOrder) unturnedDrained() <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.unturned == 0 {
		return nil
	}
	if o.drained == nil {
		o.drained = make(chan struct{})
	}
	return o.drained
}

func newMultiOrder(up func() (bool, <-chan struct{})) *multiOrder {
	return &multiOrder{turn: make(chan struct{}, 1), up: up}
}

// do sends ops with send once the multis before it are on the connection,
// calling entered (when not nil) as this one is written to it, or as it
// returns without having been written (the connection closed first, or it
// was not sent). It is not sent, and do returns ctx's error, when ctx ends
// before it is sent (waiting for its turn, or in its turn for the multis
// sent without one); nor, with errGone, when live (when not nil) says at its
// turn that its callers have all gone. While the session is not
// connected, it goes without a turn (multiOrder). entered runs on
// go-zookeeper's sending goroutine: it must not block.
func (o *multiOrder) do(ctx context.Context, ops []any, entered func(), live func() bool, send func([]any) ([]zk.MultiResponse, error)) ([]zk.MultiResponse, error) {
	var once sync.Once
	release := func(held bool) {
		once.Do(func() {
			if entered != nil {
				entered()
			}
			if held {
				<-o.turn
			}
		})
	}
	for turn := false; !turn; {
		o.goUnturned()
		up, changed := o.up()
		if !up {
			// Nothing is written until a connection comes: go to
			// go-zookeeper's queue without a turn, and let the next
			// batch follow once this one has its answer (as with one
			// batch in flight), so batches keep their order.
			if live != nil && !live() {
				o.doneUnturned()
				release(false)
				return nil, errGone
			}
			res, err := send(ops)
			o.doneUnturned()
			release(false)
			return res, err
		}
		o.doneUnturned()
		select {
		case o.turn <- struct{}{}:
			turn = true
		case <-changed:
		case <-ctx.Done():
			release(false)
			return nil, ctx.Err()
		}
	}
	// Holding the turn: let the multis sent without one be answered
	// first, so that none is written after this one's release is set.
	for d := o.unturnedDrained(); d != nil; d = o.unturnedDrained() {
		if o.waitUnturned != nil {
			o.waitUnturned()
		}
		select {
		case <-d:
		case <-ctx.Done():
			release(true)
			return nil, ctx.Err()
		}
	}
	if err := ctx.Err(); err != nil {
		release(true)
		return nil, err
	}
	if live != nil && !live() {
		release(true)
		return nil, errGone
	}
	r := func() { release(true) }
	o.pending.Store(&r)
	res, err := send(ops)
	o.pending.CompareAndSwap(&r, nil)
	r()
	return res, err
}

// written is told of each multi written to the connection: the one
// entering.
func (o *multiOrder) written() {
	if p := o.pending.Swap(nil); p != nil {
		(*p)()
	}
}

// opMulti is the opcode of ZooKeeper's multi request.
const opMulti = 14

// orderedConn is a connection go-zookeeper dialed, telling o of each
// multi it writes. go-zookeeper writes each request whole in one Write:
// its length (4 bytes), xid (4), opcode (4), body; the first Write of a
// connection is the session handshake, which has no such header.
type orderedConn struct {
	net.Conn
	o         *multiOrder
	handshake atomic.Bool // written
}

func (c *orderedConn) Write(b []byte) (int, error) {
	if !c.handshake.Swap(true) {
		return c.Conn.Write(b)
	}
	// One goroutine writes the requests, one after the other: this one's
	// place is taken once it is here.
	if len(b) >= 12 && int32(binary.BigEndian.Uint32(b[8:12])) == opMulti {
		c.o.written()
	}
	return c.Conn.Write(b)
}

// ordered wraps dial's connections for o.
func ordered(dial zk.Dialer, o *multiOrder) zk.Dialer {
	return func(network, address string, timeout time.Duration) (net.Conn, error) {
		c, err := dial(network, address, timeout)
		if err != nil {
			return nil, err
		}
		return &orderedConn{Conn: c, o: o}, nil
	}
}
