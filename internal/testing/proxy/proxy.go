// Package proxy forwards TCP connections and puts network faults (cuts,
// stalls) between their two sides, for tests and the fault-injection runs.
package proxy

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Proxy forwards TCP connections to a target and puts network faults
// between the two sides:
//
//   - Cut closes every connection and refuses new ones, as a crashed host
//     or a firewall that sends resets would. Both sides notice at once.
//   - Stall stops moving bytes in both directions but keeps every
//     connection open, and holds new ones open too, as a silent partition
//     would. Neither side is told anything; only its timeouts reveal it.
//
// Restore ends either fault: after a stall, the bytes held are delivered
// in order, as a network that heals delivers its backlog.
type Proxy struct {
	ln     net.Listener
	target string
	log    *slog.Logger
	wg     sync.WaitGroup // the accept loop and two pipes per link

	mu     sync.Mutex
	links  map[*link]struct{}
	held   chan struct{} // non-nil while stalled; closed when the stall ends
	down   bool          // cut or closed: new connections are refused
	closed bool
}

// link is one proxied connection: the client's side and the target's.
type link struct {
	client, server net.Conn
	done           chan struct{} // closed by close
	once           sync.Once
}

func (l *link) close() {
	l.once.Do(func() {
		l.client.Close()
		l.server.Close()
		close(l.done)
	})
}

// New starts a proxy to target on a free loopback port. It logs every
// fault it is told to inject to log (nil: discard); give it a logger that
// names the link, log.With("replica", id), say. Close stops it.
func New(target string, log *slog.Logger) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("chaos: proxy to %s: %w", target, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Proxy{ln: ln, target: target, log: log.With("proxy", ln.Addr().String(), "target", target),
		links: map[*link]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address clients dial instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target is the address the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		s, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		if err != nil {
			c.Close() // the target is down: the client sees a reset
			continue
		}
		l := &link{client: c, server: s, done: make(chan struct{})}
		p.mu.Lock()
		if p.down { // cut or closed while dialing
			p.mu.Unlock()
			l.close()
			continue
		}
		p.links[l] = struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		go p.pipe(l, s, c)
		go p.pipe(l, c, s)
	}
}

// pipe copies src to dst until either side closes or the link is cut,
// waiting out stalls both before reading (so the kernel's buffers fill) and
// before writing what it has read (so those bytes are held).
func (p *Proxy) pipe(l *link, dst, src net.Conn) {
	defer p.wg.Done()
	defer p.drop(l)
	buf := make([]byte, 32<<10)
	for p.flowing(l) {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.flowing(l) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// flowing waits while the proxy is stalled; it reports false once the link
// is closed.
func (p *Proxy) flowing(l *link) bool {
	for {
		p.mu.Lock()
		held := p.held
		p.mu.Unlock()
		if held == nil {
			select {
			case <-l.done:
				return false
			default:
				return true
			}
		}
		select {
		case <-held:
		case <-l.done:
			return false
		}
	}
}

func (p *Proxy) drop(l *link) {
	l.close()
	p.mu.Lock()
	delete(p.links, l)
	p.mu.Unlock()
}

// Cut closes every connection and refuses new ones until Restore. It ends
// a stall: the bytes held are lost with their connections.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log.Info("chaos: proxy cut", "connections", len(p.links))
	p.cut()
}

// cut closes every link and refuses new ones; p.mu is held.
func (p *Proxy) cut() {
	p.down = true
	p.release()
	for l := range p.links {
		l.close()
		delete(p.links, l)
	}
}

// Stall stops forwarding in both directions without closing anything; new
// connections are accepted and stalled as well. Restore resumes.
func (p *Proxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log.Info("chaos: proxy stalled", "connections", len(p.links))
	if p.held == nil {
		p.held = make(chan struct{})
	}
}

// Restore ends a Cut or a Stall: connections are accepted again, and
// stalled ones deliver what they held and carry on. A closed proxy stays
// closed.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log.Info("chaos: proxy restored", "connections", len(p.links))
	p.down = p.closed
	p.release()
}

// release ends a stall; p.mu is held.
func (p *Proxy) release() {
	if p.held != nil {
		close(p.held)
		p.held = nil
	}
}

// Close stops the proxy: it stops listening, closes every connection and
// waits for its goroutines to end.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	p.closed = true
	p.cut()
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

var _ io.Closer = (*Proxy)(nil)
