package server

import (
	"time"

	"github.com/zkcoord/zkcoord/internal/dnsview"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// newDNS returns the DNS view of g's registry (package dnsview), with
// opt after the gateway's own: its logger, and the freshness rule below.
func (g *Gateway) newDNS(opt []dnsview.Option) (*dnsview.Server, error) {
	own := []dnsview.Option{dnsview.WithLogger(g.log), dnsview.WithServing(g.cacheTrusted)}
	return dnsview.New(g.replica.Registry, append(own, opt...)...)
}

// cacheTrusted reports whether the registry's caches may answer DNS: while
// the ZooKeeper session is connected (they lag it by a watch
// notification), and for one session timeout after the connection was
// lost (while the session may live on: the slack zkcoord's lease contract
// allows a replica cut from ZooKeeper). Past that, or once the session
// has expired, the view answers SERVFAIL, so that resolvers ask another
// replica rather than get members that may have left.
func (g *Gateway) cacheTrusted() bool {
	sess := g.replica.Session
	switch st := sess.Status(); st.State {
	case zkx.StateConnected:
		return true
	case zkx.StateDisconnected:
		return time.Since(st.Since) < sess.Timeout()
	}
	return false
}
