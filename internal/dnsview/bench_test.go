package dnsview_test

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// BenchmarkQueryUDP: queries answered over UDP from the cache, by a test
// gateway on the test ZooKeeper, from parallel clients (one UDP socket
// each, a query at a time), on a group of 10 members. queries/s is the
// figure docs/BENCHMARKS.md reports.
func BenchmarkQueryUDP(b *testing.B) {
	e := start(b)
	for i := range 10 {
		e.register(b, "web", fmt.Sprintf("w%d", i), fmt.Sprintf("10.0.0.%d:80", i+1), map[string]string{"zone": "a"})
	}
	for _, q := range []struct {
		name  string
		qname string
		qtype uint16
		rcode int
	}{
		{"SRV-group-of-10", "web.zkcoord.", dns.TypeSRV, dns.RcodeSuccess},
		{"A-group-of-10", "web.zkcoord.", dns.TypeA, dns.RcodeSuccess},
		{"A-member", "w1.web.zkcoord.", dns.TypeA, dns.RcodeSuccess},
		{"TXT-member", "w1.web.zkcoord.", dns.TypeTXT, dns.RcodeSuccess},
		{"NXDOMAIN", "nope.web.zkcoord.", dns.TypeA, dns.RcodeNameError},
	} {
		b.Run(q.name, func(b *testing.B) {
			var failed atomic.Int64
			b.SetParallelism(4) // 4 x GOMAXPROCS clients
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				conn, err := dns.Dial("udp", e.gw.DNS)
				if err != nil {
					failed.Add(1)
					return
				}
				defer conn.Close()
				conn.UDPSize = 1232
				m := new(dns.Msg)
				m.SetQuestion(q.qname, q.qtype)
				m.SetEdns0(1232, false)
				for pb.Next() {
					m.Id = dns.Id()
					_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
					if err := conn.WriteMsg(m); err != nil {
						failed.Add(1)
						continue
					}
					r, err := conn.ReadMsg()
					if err != nil || r.Rcode != q.rcode {
						if failed.Add(1) == 1 {
							b.Logf("%s: %v, %v", q.name, r, err)
						}
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
			if n := failed.Load(); n > 0 {
				b.Errorf("%d of %d queries failed", n, b.N)
			}
		})
	}
}

// BenchmarkGoneAfterDeregister: the time from a Deregister's answer to the
// first DNS answer without the member (queries back to back over UDP),
// p50 and p99 over b.N members.
func BenchmarkGoneAfterDeregister(b *testing.B) {
	e := start(b)
	e.register(b, "web", "stays", "10.0.0.1:80", nil)
	has := func(id string) bool {
		m := new(dns.Msg)
		m.SetQuestion("web.zkcoord.", dns.TypeSRV)
		r, _, err := (&dns.Client{Timeout: 5 * time.Second}).Exchange(m, e.gw.DNS)
		if err != nil {
			b.Fatal(err)
		}
		for _, rr := range r.Answer {
			if rr.(*dns.SRV).Target == id+".web.zkcoord." {
				return true
			}
		}
		return false
	}
	var took []time.Duration
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprintf("m%d", i)
		b.StopTimer()
		e.register(b, "web", id, "10.0.1.1:80", nil)
		for !has(id) {
		}
		b.StartTimer()
		e.deregister(b, "web", id)
		left := time.Now()
		for has(id) {
			if time.Since(left) > 10*time.Second {
				b.Fatalf("%s still in DNS 10s after its Deregister", id)
			}
		}
		took = append(took, time.Since(left))
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "ms-p50")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "ms-p99")
}
