package zkx

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

// TestTurnWaitsForUnturnedMultis: a multi sent without a turn while the
// session was not connected, still in go-zookeeper's queue when the session
// counts as connected again, must not end the turn of a multi that takes
// its turn after it. Here go-zookeeper's queue and its writer are the
// test's: multi A goes without a turn; the session comes back; multi B
// takes its turn; A is written. B's turn must end at B's own write, which
// needs B to wait for A's answer before it is sent; without that wait B is
// queued behind A with its release set, and A's write ends B's turn.
func TestTurnWaitsForUnturnedMultis(t *testing.T) {
	var mu sync.Mutex
	connected, changed := false, make(chan struct{})
	o := newMultiOrder(func() (bool, <-chan struct{}) {
		mu.Lock()
		defer mu.Unlock()
		return connected, changed
	})
	waiting := make(chan struct{}, 1)
	o.waitUnturned = func() {
		select {
		case waiting <- struct{}{}:
		default:
		}
	}

	type request struct {
		name   string
		answer chan struct{}
	}
	queue := make(chan request, 4) // go-zookeeper's queue
	send := func(name string) func([]any) ([]zk.MultiResponse, error) {
		return func([]any) ([]zk.MultiResponse, error) {
			r := request{name, make(chan struct{})}
			queue <- r
			<-r.answer
			return nil, nil
		}
	}
	next := func(what string) request {
		t.Helper()
		select {
		case r := <-queue:
			return r
		case <-time.After(10 * time.Second):
			t.Fatalf("%s was not queued", what)
			return request{}
		}
	}
	ctx := context.Background()

	aDone := make(chan struct{})
	go func() {
		defer close(aDone)
		o.do(ctx, nil, nil, nil, send("a"))
	}()
	a := next("a, sent while not connected")
	if a.name != "a" {
		t.Fatalf("queued %s, want a", a.name)
	}

	mu.Lock()
	connected = true
	close(changed)
	changed = make(chan struct{})
	mu.Unlock()

	var bWritten atomic.Bool
	bEntered := make(chan bool, 1) // whether b had been written when its turn ended
	bDone := make(chan struct{})
	go func() {
		defer close(bDone)
		o.do(ctx, nil, func() { bEntered <- bWritten.Load() }, nil, send("b"))
	}()
	var b request
	select {
	case <-waiting: // b holds its turn and waits for a's answer
	case b = <-queue: // b was sent behind a
	case <-time.After(10 * time.Second):
		t.Fatal("b neither waited for a nor was queued")
	}

	o.written() // the writer writes a
	select {
	case w := <-bEntered:
		t.Fatalf("a's write ended b's turn (b written: %v)", w)
	default:
	}

	close(a.answer)
	<-aDone
	if b.name == "" {
		b = next("b, once a had its answer")
	}
	if b.name != "b" {
		t.Fatalf("queued %s, want b", b.name)
	}
	bWritten.Store(true)
	o.written() // the writer writes b
	select {
	case w := <-bEntered:
		if !w {
			t.Fatal("b's turn ended before b was written")
		}
	default:
		t.Fatal("b's write did not end b's turn")
	}
	close(b.answer)
	<-bDone
}
