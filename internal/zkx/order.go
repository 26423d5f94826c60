package zkx

import (
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"
)

// go-zookeeper queues a request and waits for its answer in one call
// (Conn.Multi), so a caller cannot tell when its request has taken its
// place on the connection: two goroutines calling Multi one just after the
// other may enter it in either order. The group commit needs that order
// (batch.go: a batch enters after the one taken before it), so a Session
// sends its multis through a multiOrder: one multi at a time goes from its
// call to its write on the connection, which orderedConn, wrapping the
// connection go-zookeeper dials, sees. ZooKeeper runs a session's
// requests in the order they arrive.

// multiOrder lets the session's multis enter the connection one at a
// time.
type multiOrder struct {
	mu      sync.Mutex             // held from a multi's call until its write (or its return, unwritten)
	pending atomic.Pointer[func()] // the entering multi's release, for orderedConn
}

// multi sends ops on conn once the multis before it are on the
// connection, calling entered (when not nil) as this one is written to
// it, or as it returns without having been written (the connection
// closed first).
func (o *multiOrder) multi(conn *zk.Conn, ops []any, entered func()) ([]zk.MultiResponse, error) {
	o.mu.Lock()
	var once sync.Once
	release := func() {
		once.Do(func() {
			if entered != nil {
				entered()
			}
			o.mu.Unlock()
		})
	}
	o.pending.Store(&release)
	res, err := conn.Multi(ops...)
	o.pending.CompareAndSwap(&release, nil)
	release()
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
