package client_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/client"
	"github.com/zkcoord/zkcoord/internal/testing/testenv"
)

// proxy forwards TCP connections to a target until cut breaks them all, as
// a network failure between a client and its gateway would.
type proxy struct {
	lis    net.Listener
	target string
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
}

// newProxy starts a proxy to target, stopped at cleanup.
func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{lis: lis, target: target}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		lis.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) addr() string { return p.lis.Addr().String() }

func (p *proxy) accept() {
	for {
		down, err := p.lis.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			down.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, down, up)
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			io.Copy(dst, src)
			dst.Close()
			src.Close()
		}
		p.wg.Go(func() { pipe(up, down) })
		p.wg.Go(func() { pipe(down, up) })
	}
}

// cut breaks every connection made so far; new ones go through.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func TestGatewayReconnects(t *testing.T) {
	p := newProxy(t, testenv.Gateway(t))
	c, err := client.New(t.Context(), p.addr(), client.WithBackoff(10*time.Millisecond, 100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	direct := connect(t)
	s, other := session(t, c, client.WithTTL(5*time.Second)), session(t, direct)
	ctx, group, election := ctxT(t), name(t, "g"), name(t, "e")

	watch := c.WatchGroup(ctx, group)
	nextState(t, watch)
	if _, err := s.Register(ctx, group, "a", "1"); err != nil {
		t.Fatal(err)
	}
	waitMembers(t, watch, "a")
	l, err := s.Campaign(ctx, election, "me")
	if err != nil {
		t.Fatal(err)
	}
	lost := s.Lost()
	st := l.State()

	p.cut()

	// The term goes into jeopardy while its stream is reopened, then goes
	// on: the candidacy belongs to the session's lease, not to the stream.
	for {
		select {
		case <-st.Changed:
		case <-time.After(waitTimeout):
			t.Fatal("the term did not come out of jeopardy")
		}
		if err := context.Cause(l.Context()); err != nil {
			t.Fatalf("the term ended: %v", err)
		}
		if st = l.State(); !st.Jeopardy {
			break
		}
	}
	if leader, _, err := direct.Leader(ctx, election); err != nil || leader.GetFencingToken() != l.Token() {
		t.Fatalf("Leader = %v, %v; want the same term (token %d)", leader, err, l.Token())
	}

	// The watch resumes and sees what changed after the cut.
	if _, err := other.Register(ctx, group, "b", "2"); err != nil {
		t.Fatal(err)
	}
	waitMembers(t, watch, "a", "b")

	// The session kept its lease.
	select {
	case <-lost:
		t.Fatal("the session lost its lease")
	default:
	}
	if err := l.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := direct.Lookup(ctx, group, client.Member("a"), client.Linearizable()); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("member of a closed session: %v, want ErrNotFound", err)
	}
}
