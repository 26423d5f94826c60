package zktest

import (
	"testing"

	"github.com/zkcoord/zkcoord/internal/testing/proxy"
)

// Proxy forwards TCP connections to a target (ZooKeeper, a gateway) until
// Cut: tests use it to take a connection away without killing either side.
// It is a proxy.Proxy tied to a test.
type Proxy struct {
	p *proxy.Proxy
}

// NewProxy starts a proxy to target on a free loopback port; it is closed
// at the test's cleanup.
func NewProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	p, err := proxy.New(target, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.Close() })
	return &Proxy{p: p}
}

// Addr is the address clients dial instead of the target.
func (p *Proxy) Addr() string { return p.p.Addr() }

// Cut closes every connection and refuses new ones until Restore.
func (p *Proxy) Cut() { p.p.Cut() }

// Stall stops every byte both ways, with connections left open: only
// timeouts reveal it. Restore ends it.
func (p *Proxy) Stall() { p.p.Stall() }

// Restore accepts connections again.
func (p *Proxy) Restore() { p.p.Restore() }
