package dnsview_test

import (
	"context"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/zkcoord/zkcoord/internal/dnsview"
	"github.com/zkcoord/zkcoord/internal/testing/testenv"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/internal/zkx"
	"github.com/zkcoord/zkcoord/server"
)

// TestHostileQueries: what the view does with queries it does not serve:
// other classes and zone transfers are REFUSED, other opcodes NOTIMP,
// several questions FORMERR, EDNS versions above 0 BADVERS; ANY gets one
// HINFO record (RFC 8482), not every type; names with odd bytes, escaped
// dots or the longest labels get NXDOMAIN or REFUSED; garbage is
// dropped; and the view goes on answering.
func TestHostileQueries(t *testing.T) {
	e := start(t, dnsview.WithGroups("web"))
	e.register(t, "web", "w1", "10.0.0.1:80", map[string]string{"k": "v"})
	msg := func(name string, qtype uint16, edit func(*dns.Msg)) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		if edit != nil {
			edit(m)
		}
		return m
	}
	long := strings.Repeat("a", 63)
	for _, tc := range []struct {
		what    string
		network string
		m       *dns.Msg
		rcode   int
		answers int
	}{
		{"class CH", "udp", msg("version.bind.", dns.TypeTXT, func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS }), dns.RcodeRefused, 0},
		{"class CH in the domain", "udp", msg("web.zkcoord.", dns.TypeA, func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS }), dns.RcodeRefused, 0},
		{"class ANY", "udp", msg("web.zkcoord.", dns.TypeA, func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassANY }), dns.RcodeRefused, 0},
		{"AXFR", "tcp", msg("zkcoord.", dns.TypeAXFR, nil), dns.RcodeRefused, 0},
		{"IXFR", "udp", msg("zkcoord.", dns.TypeIXFR, nil), dns.RcodeRefused, 0},
		{"NOTIFY", "udp", msg("zkcoord.", dns.TypeSOA, func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify }), dns.RcodeNotImplemented, 0},
		{"UPDATE", "udp", msg("zkcoord.", dns.TypeSOA, func(m *dns.Msg) { m.Opcode = dns.OpcodeUpdate }), dns.RcodeNotImplemented, 0},
		{"two questions", "udp", msg("web.zkcoord.", dns.TypeA, func(m *dns.Msg) {
			m.Question = append(m.Question, dns.Question{Name: "w1.web.zkcoord.", Qtype: dns.TypeA, Qclass: dns.ClassINET})
		}), dns.RcodeFormatError, 0},
		{"EDNS version 1", "udp", msg("web.zkcoord.", dns.TypeA, func(m *dns.Msg) { m.SetEdns0(1232, false); m.IsEdns0().SetVersion(1) }), dns.RcodeBadVers, 0},
		{"ANY of a member", "udp", msg("w1.web.zkcoord.", dns.TypeANY, nil), dns.RcodeSuccess, 1},
		{"ANY of a group", "tcp", msg("web.zkcoord.", dns.TypeANY, nil), dns.RcodeSuccess, 1},
		{"ANY of nothing", "udp", msg("nope.web.zkcoord.", dns.TypeANY, nil), dns.RcodeNameError, 0},
		{"a NUL byte", "udp", msg(`w\0001.web.zkcoord.`, dns.TypeA, nil), dns.RcodeNameError, 0},
		{"bytes above ASCII", "udp", msg(`w\255\254.web.zkcoord.`, dns.TypeA, nil), dns.RcodeNameError, 0},
		{"a dot in a label", "udp", msg(`w\.1.web.zkcoord.`, dns.TypeA, nil), dns.RcodeNameError, 0},
		{"a space", "udp", msg(`w\ 1.web.zkcoord.`, dns.TypeA, nil), dns.RcodeNameError, 0},
		{"odd bytes only", "udp", msg(`\007\008.zkcoord.`, dns.TypeA, nil), dns.RcodeRefused, 0},
		{"the longest name", "udp", msg(long+"."+long+"."+long+"."+strings.Repeat("w", 53)+".zkcoord.", dns.TypeA, nil), dns.RcodeRefused, 0},
		{"the longest member", "udp", msg(long+"."+long+"."+long+"."+strings.Repeat("w", 49)+".web.zkcoord.", dns.TypeA, nil), dns.RcodeNameError, 0},
		{"many labels", "tcp", msg(strings.Repeat("a.", 120)+"web.zkcoord.", dns.TypeSRV, nil), dns.RcodeNameError, 0},
		{"the root", "udp", msg(".", dns.TypeNS, nil), dns.RcodeRefused, 0},
		{"a type out of range", "udp", msg("w1.web.zkcoord.", 65280, nil), dns.RcodeSuccess, 0},
	} {
		r := exchange(t, e.gw.DNS, tc.network, tc.m)
		if r.Rcode != tc.rcode || len(r.Answer) != tc.answers {
			t.Errorf("%s: %s with %d answers, want %s with %d: %v", tc.what, dns.RcodeToString[r.Rcode], len(r.Answer), dns.RcodeToString[tc.rcode], tc.answers, r)
		}
		if tc.answers == 1 && r.Answer[0].Header().Rrtype != dns.TypeHINFO {
			t.Errorf("%s: %v, want the HINFO of RFC 8482", tc.what, r.Answer[0])
		}
	}

	// Garbage, short packets and a flood of them: the view drops what it
	// cannot read and answers the next query.
	c, err := net.Dial("udp", e.gw.DNS)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		b := make([]byte, rnd.IntN(600))
		for j := range b {
			b[j] = byte(rnd.UintN(256))
		}
		if i%2 == 0 && len(b) > 12 {
			b[2] &^= 0x80 // a query, not a response: the parser gets further
		}
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	// UDP may drop the query behind the burst, as it may any datagram:
	// resolvers ask again, and so does this test.
	q := new(dns.Msg).SetQuestion("w1.web.zkcoord.", dns.TypeA)
	for try := 1; ; try++ {
		r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(q, e.gw.DNS)
		if err == nil {
			if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
				t.Errorf("A w1 after garbage: %v", r)
			}
			break
		}
		if try == 5 {
			t.Fatalf("A w1 after garbage, 5 tries: %v", err)
		}
	}
}

// TestQueriesWhileZooKeeperStalls: while ZooKeeper answers nothing (the
// session does not notice: its timeout is long), cached groups are
// answered at once, and a group whose cache is not loaded fails
// (SERVFAIL) at the query's deadline (2 s), well before resolvers give
// up; once ZooKeeper answers, it is answered.
func TestQueriesWhileZooKeeperStalls(t *testing.T) {
	px := zktest.NewProxy(t, zktest.Addr(t))
	sess, lay := zktest.SessionThrough(t, px, zkx.WithSessionTimeout(30*time.Second))
	gw := testenv.ServeDNS(t, sess, "127.0.0.1:0", []dnsview.Option{dnsview.WithGroups("*")},
		server.WithRoot(lay.Root), server.WithLogger(zktest.Logger(t)))
	e := env{gw: gw}
	w := writer(t, lay.Root)
	w.register(t, "cold", "c1", "10.0.0.2:80", nil) // listed, never asked: no cache
	w.register(t, "hot", "h1", "10.0.0.1:80", nil)
	zktest.Eventually(t, 10*time.Second, func() bool {
		return len(e.query(t, "udp", "hot.zkcoord.", dns.TypeA, 0).Answer) == 1
	}, "hot answered (its cache loaded; the listing has cold, created before it)")

	px.Stall()
	began := time.Now()
	if r := e.query(t, "udp", "hot.zkcoord.", dns.TypeA, 0); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || time.Since(began) > 100*time.Millisecond {
		t.Errorf("A hot while ZooKeeper stalls: %v after %v; want its member at once", r, time.Since(began))
	}
	began = time.Now()
	r := e.query(t, "udp", "cold.zkcoord.", dns.TypeA, 0)
	if took := time.Since(began); r.Rcode != dns.RcodeServerFailure || took > 2*time.Second+zktest.Slack {
		t.Errorf("A cold while ZooKeeper stalls: %s after %v; want SERVFAIL within 2s", dns.RcodeToString[r.Rcode], took)
	}
	px.Restore()
	zktest.Eventually(t, 20*time.Second, func() bool {
		return len(e.query(t, "udp", "cold.zkcoord.", dns.TypeA, 0).Answer) == 1
	}, "cold answered once ZooKeeper answers")
}

// TestCutOffAnswersServfail: a replica cut from ZooKeeper answers from its
// cache for one session timeout after it noticed, then SERVFAIL (the
// cache may miss departures), so resolvers ask another replica; it
// answers again once it is back.
func TestCutOffAnswersServfail(t *testing.T) {
	px := zktest.NewProxy(t, zktest.Addr(t))
	const timeout = 4 * time.Second
	sess, lay := zktest.SessionThrough(t, px, zkx.WithSessionTimeout(timeout))
	gw := testenv.ServeDNS(t, sess, "127.0.0.1:0", []dnsview.Option{dnsview.WithGroups("*")},
		server.WithRoot(lay.Root), server.WithLogger(zktest.Logger(t)))
	e := env{gw: gw}
	writer(t, lay.Root).register(t, "web", "w1", "10.0.0.1:80", nil)
	zktest.Eventually(t, 10*time.Second, func() bool {
		return len(e.query(t, "udp", "web.zkcoord.", dns.TypeA, 0).Answer) == 1
	}, "web answered")

	px.Cut()
	cut := time.Now()
	zktest.Eventually(t, 3*timeout, func() bool {
		return e.query(t, "udp", "web.zkcoord.", dns.TypeA, 0).Rcode == dns.RcodeServerFailure
	}, "SERVFAIL once cut off for a session timeout")
	took := time.Since(cut)
	t.Logf("SERVFAIL %v after the cut (session timeout %v, granted %v)", took, timeout, sess.Timeout())
	if took < sess.Timeout() {
		t.Errorf("SERVFAIL %v after the cut, before the session timeout %v", took, sess.Timeout())
	}
	px.Restore()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sess.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	zktest.Eventually(t, 20*time.Second, func() bool {
		return len(e.query(t, "udp", "web.zkcoord.", dns.TypeA, 0).Answer) == 1
	}, "answered again once back")
}
