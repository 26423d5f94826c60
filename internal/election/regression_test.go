package election

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// stallProxy forwards TCP to a target; Stall makes it silently drop every
// byte (a partition, not a reset: nobody sees a close), Resume forwards again.
type stallProxy struct {
	ln      net.Listener
	target  string
	stalled atomic.Bool
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   []net.Conn
}

func newStallProxy(t *testing.T, target string) *stallProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{ln: ln, target: target}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if p.stalled.Load() {
				c.Close()
				continue
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			p.wg.Add(2)
			go p.pipe(c, u)
			go p.pipe(u, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *stallProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.stalled.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				return
			}
			return
		}
	}
}

// TestJeopardyDeadlineBeforeExpiry: JEOPARDY's deadline is "disconnection
// time + session timeout", but go-zookeeper notices a silent partition only
// after its receive timeout (2/3 of the session timeout) without traffic,
// while ZooKeeper expires the session one timeout after the last packet it
// got. So the session, and with it the lease's owner ephemeral, can be gone
// up to 2/3 of a timeout before the deadline the leader was given: another
// replica may then adopt or revoke the lease and elect the next candidate
// while the old leader still believes its term is safe.
func TestJeopardyDeadlineBeforeExpiry(t *testing.T) {
	b := setup(t) // replica B, direct
	px := newStallProxy(t, zktest.Addr(t))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const timeout = 3 * time.Second
	sessA, err := zkx.Dial(ctx, px.ln.Addr().String(), zkx.WithSessionTimeout(timeout))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sessA.Close)
	a := newGateway(t, sessA, b.lay) // replica A, through the proxy

	l1 := a.grant(t, time.Minute)
	c1 := a.campaign(t, "e", "a", l1.ID)
	elected := c1.expect(t, Elected)
	l2 := b.grant(t, time.Minute)
	c2 := b.campaign(t, "e", "b", l2.ID)
	c2.expect(t, Queued)

	time.Sleep(500 * time.Millisecond)
	stalled := time.Now()
	px.stalled.Store(true)
	j := c1.expect(t, Jeopardy)
	t.Logf("stalled at 0; JEOPARDY reported at %v with deadline %v (token %d)",
		j.At.Sub(stalled), j.Deadline.Sub(stalled), elected.Token)

	// The session expires on the server: the owner ephemeral goes.
	zktest.Eventually(t, 10*time.Second, func() bool {
		ok, _, err := b.sess.Conn().Exists(b.lay.LeaseOwner(l1.Key))
		return err == nil && !ok
	}, "A's session never expired")
	expired := time.Now()
	// Another replica can now take the lease over and end it (a restart
	// adopts it; here, a Revoke through B): the next candidate leads.
	if err := b.leases.Revoke(context.Background(), l1.ID); err != nil {
		t.Fatalf("Revoke through B: %v", err)
	}
	next := c2.expect(t, Elected)
	t.Logf("A's session gone by %v; B's candidate ELECTED at %v (token %d)",
		expired.Sub(stalled), next.At.Sub(stalled), next.Token)
	if next.At.Before(j.Deadline) {
		t.Errorf("a new leader was elected %v before the old leader's JEOPARDY deadline",
			j.Deadline.Sub(next.At))
	}
	px.stalled.Store(false)
}
