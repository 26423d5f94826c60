package dnsview

import (
	"context"
	"fmt"
	"testing"

	"github.com/miekg/dns"

	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/registry"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
)

// BenchmarkAnswer: the view's own cost per query, without the network: a
// registry on the test ZooKeeper (the package's TestMain starts it),
// groups of 10 and 1,000 members, answered from the cache.
func BenchmarkAnswer(b *testing.B) {
	ctx := context.Background()
	sess, lay := zktest.Session(b)
	leases, err := lease.NewManager(sess, lay.Root, zktest.Logger(b))
	if err != nil {
		b.Fatal(err)
	}
	reg, err := registry.New(sess, lay.Root, leases, zktest.Logger(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { reg.Close(); leases.Close() })
	for _, g := range []struct {
		name string
		n    int
	}{{"small", 10}, {"large", 1000}} {
		for i := range g.n {
			if _, _, err := reg.Register(ctx, registry.RegisterParams{Group: g.name, ID: fmt.Sprintf("m%d", i),
				Value: fmt.Sprintf("10.%d.%d.%d:80", i>>16&255, i>>8&255, i&255), Persistent: true}); err != nil {
				b.Fatal(err)
			}
		}
	}
	s, err := New(reg, WithGroups("*"))
	if err != nil {
		b.Fatal(err)
	}
	for _, q := range []struct {
		name, qname string
		qtype       uint16
		tcp         bool
	}{
		{"SRV-10", "small.zkcoord.", dns.TypeSRV, false},
		{"A-10", "small.zkcoord.", dns.TypeA, false},
		{"A-member-of-10", "m1.small.zkcoord.", dns.TypeA, false},
		{"NXDOMAIN", "nope.small.zkcoord.", dns.TypeA, false},
		{"A-member-of-1000", "m1.large.zkcoord.", dns.TypeA, false},
		{"SRV-1000-UDP-truncated", "large.zkcoord.", dns.TypeSRV, false},
		{"SRV-1000-TCP", "large.zkcoord.", dns.TypeSRV, true},
	} {
		req := new(dns.Msg).SetQuestion(q.qname, q.qtype)
		m, why := s.answer(req, q.tcp)
		if why != "" || m.Rcode == dns.RcodeServerFailure {
			b.Fatalf("%s: %v (%s)", q.name, m, why)
		}
		wire, err := m.Pack()
		if err != nil {
			b.Fatal(err)
		}
		b.Run(q.name, func(b *testing.B) {
			for b.Loop() {
				s.answer(req, q.tcp)
			}
			b.ReportMetric(float64(len(wire)), "bytes/answer")
		})
	}
}
