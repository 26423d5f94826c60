package dnsview_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/zkcoord/zkcoord/internal/dnsview"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
)

// TestGoResolver: Go's resolver finds members through the view: A and
// AAAA of a group and of a member, SRV with ports and targets that
// resolve, TXT with metadata; unknown names are not found.
func TestGoResolver(t *testing.T) {
	e := start(t)
	e.register(t, "web", "w1", "10.0.0.1:80", map[string]string{"zone": "a", "version": "1.2"})
	e.register(t, "web", "w2", "[2001:db8::2]:8080", nil)
	e.register(t, "web", "10.0.0.5", "10.0.0.5:81", nil) // a member id with dots
	e.register(t, "web", "url", "http://10.0.0.9/", nil) // no address: no A, no SRV
	e.register(t, "db.prod", "d1", "db1.example.com:5432", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := e.resolver()

	_, srvs, err := r.LookupSRV(ctx, "", "", "web.zkcoord.")
	if err != nil {
		t.Fatalf("LookupSRV web: %v", err)
	}
	var got []string
	for _, s := range srvs {
		got = append(got, fmt.Sprintf("%s:%d", s.Target, s.Port))
		ips, err := r.LookupHost(ctx, s.Target) // each target resolves
		if err != nil || len(ips) != 1 {
			t.Errorf("target %s: %v, %v", s.Target, ips, err)
		}
	}
	slices.Sort(got)
	if want := []string{"10.0.0.5.web.zkcoord.:81", "w1.web.zkcoord.:80", "w2.web.zkcoord.:8080"}; !slices.Equal(got, want) {
		t.Errorf("SRV web: %v, want %v", got, want)
	}
	hosts, err := r.LookupHost(ctx, "web.zkcoord.")
	slices.Sort(hosts)
	if want := []string{"10.0.0.1", "10.0.0.5", "2001:db8::2"}; err != nil || !slices.Equal(hosts, want) {
		t.Errorf("LookupHost web: %v, %v; want %v", hosts, err, want)
	}
	if ips, err := r.LookupIP(ctx, "ip6", "W2.Web.ZKCOORD."); err != nil || len(ips) != 1 || ips[0].String() != "2001:db8::2" {
		t.Errorf("LookupIP ip6 of W2.Web.ZKCOORD.: %v, %v", ips, err)
	}
	txt, err := r.LookupTXT(ctx, "w1.web.zkcoord.")
	if want := []string{"version=1.2", "zone=a"}; err != nil || !slices.Equal(txt, want) {
		t.Errorf("TXT w1: %v, %v; want %v", txt, err, want)
	}
	if _, srvs, err := r.LookupSRV(ctx, "", "", "db.prod.zkcoord."); err != nil || len(srvs) != 1 || srvs[0].Target != "db1.example.com." || srvs[0].Port != 5432 {
		t.Errorf("SRV db.prod: %v, %v; want db1.example.com.:5432", srvs, err)
	}
	for _, name := range []string{"nope.web.zkcoord.", "url.web.zkcoord.", "other.zkcoord."} {
		var de *net.DNSError
		if ips, err := r.LookupHost(ctx, name); !errors.As(err, &de) || !de.IsNotFound {
			t.Errorf("LookupHost %s: %v, %v; want not found", name, ips, err)
		}
	}
}

// TestAnswers: the answers on the wire: additional records of SRV
// answers, the TTL, NXDOMAIN and NODATA with the SOA in the authority
// section, names above members and groups, the apex.
func TestAnswers(t *testing.T) {
	e := start(t, dnsview.WithTTL(7*time.Second), dnsview.WithDomain("Svc.Test"))
	e.register(t, "web", "w1", "10.0.0.1:80", map[string]string{"long": strings.Repeat("x", 300), "quote": `a"b\c`})
	e.register(t, "web", "w2", "[2001:db8::2]:8080", nil)
	e.register(t, "api.web", "a1", "10.0.1.1", nil) // no port: no SRV

	r := e.query(t, "udp", "web.svc.test.", dns.TypeSRV, 0)
	if r.Rcode != dns.RcodeSuccess || !r.Authoritative || r.Truncated {
		t.Fatalf("SRV web: %v", r)
	}
	ans, extra := rrs(r.Answer), rrs(r.Extra)
	slices.Sort(ans)
	slices.Sort(extra)
	if want := []string{"web.svc.test. SRV 1 1 80 w1.web.svc.test.", "web.svc.test. SRV 1 1 8080 w2.web.svc.test."}; !slices.Equal(ans, want) {
		t.Errorf("SRV web answers %q, want %q", ans, want)
	}
	if want := []string{"w1.web.svc.test. A 10.0.0.1", "w2.web.svc.test. AAAA 2001:db8::2"}; !slices.Equal(extra, want) {
		t.Errorf("SRV web additional %q, want %q", extra, want)
	}
	for _, rr := range append(r.Answer, r.Extra...) {
		if rr.Header().Ttl != 7 {
			t.Errorf("TTL of %v: want 7", rr)
		}
	}
	if r := e.query(t, "udp", "w1.web.svc.test.", dns.TypeTXT, 4096); len(r.Answer) != 2 {
		t.Errorf("TXT w1: %v", r)
	} else {
		long, quote := r.Answer[0].(*dns.TXT), r.Answer[1].(*dns.TXT)
		if got := strings.Join(quote.Txt, ""); got != `quote=a\"b\\c` { // as miekg/dns presents the bytes quote=a"b\c
			t.Errorf("TXT w1, second record %q", got)
		}
		if len(long.Txt) != 2 || len(long.Txt[0]) != 255 || long.Txt[0]+long.Txt[1] != "long="+strings.Repeat("x", 300) {
			t.Errorf("TXT w1, a long entry in strings of %v", long.Txt)
		}
	}
	if r := e.query(t, "udp", "api.web.svc.test.", dns.TypeA, 0); len(r.Answer) != 1 || rrs(r.Answer)[0] != "api.web.svc.test. A 10.0.1.1" {
		t.Errorf("A api.web: %v", r)
	}
	soa := "svc.test. SOA ns.svc.test. hostmaster.svc.test. "
	for _, tc := range []struct {
		name  string
		qtype uint16
		rcode int
	}{
		{"nope.web.svc.test.", dns.TypeA, dns.RcodeNameError},
		{"x.nope.web.svc.test.", dns.TypeSRV, dns.RcodeNameError},
		{"nothing.svc.test.", dns.TypeA, dns.RcodeNameError},
		{"web.svc.test.", dns.TypeTXT, dns.RcodeSuccess},     // a group has no TXT
		{"api.web.svc.test.", dns.TypeSRV, dns.RcodeSuccess}, // no port
		{"w1.web.svc.test.", dns.TypeAAAA, dns.RcodeSuccess}, // IPv4 only
		{"w2.web.svc.test.", dns.TypeTXT, dns.RcodeSuccess},  // no metadata
		{"w1.web.svc.test.", dns.TypeMX, dns.RcodeSuccess},   // a type the view has not
		{"svc.test.", dns.TypeA, dns.RcodeSuccess},           // the apex
	} {
		r := e.query(t, "udp", tc.name, tc.qtype, 0)
		if r.Rcode != tc.rcode || len(r.Answer) != 0 || len(r.Ns) != 1 || !strings.HasPrefix(rrs(r.Ns)[0], soa) || r.Ns[0].Header().Ttl != 7 || r.Ns[0].(*dns.SOA).Minttl != 7 {
			t.Errorf("%s %s: %v; want %s, no answer, the SOA with TTL and minimum 7", tc.name, dns.TypeToString[tc.qtype], r, dns.RcodeToString[tc.rcode])
		}
	}
	if r := e.query(t, "udp", "svc.test.", dns.TypeSOA, 0); len(r.Answer) != 1 || !strings.HasPrefix(rrs(r.Answer)[0], soa) {
		t.Errorf("SOA svc.test.: %v", r)
	}
}

// TestDig: dig finds the members, as docs/DNS.md shows: `dig SRV` answers
// with each registered member and its address in the additional section.
func TestDig(t *testing.T) {
	e := start(t)
	e.register(t, "web", "w1", "10.0.0.1:80", nil)
	e.register(t, "web", "w2", "10.0.0.2:80", nil)
	out := e.dig(t, "SRV", "web.zkcoord.")
	for _, re := range []string{
		`status: NOERROR`, `flags: qr aa;`, `ANSWER: 2, AUTHORITY: 0, ADDITIONAL: 3`,
		`(?m)^web\.zkcoord\.\s+5\s+IN\s+SRV\s+1 1 80 w1\.web\.zkcoord\.$`,
		`(?m)^web\.zkcoord\.\s+5\s+IN\s+SRV\s+1 1 80 w2\.web\.zkcoord\.$`,
		`(?m)^w1\.web\.zkcoord\.\s+5\s+IN\s+A\s+10\.0\.0\.1$`,
		`(?m)^w2\.web\.zkcoord\.\s+5\s+IN\s+A\s+10\.0\.0\.2$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("dig SRV web.zkcoord. has no match for %s:\n%s", re, out)
		}
	}
	out = e.dig(t, "A", "nope.web.zkcoord.")
	if !strings.Contains(out, "status: NXDOMAIN") || !regexp.MustCompile(`(?m)^zkcoord\.\s+5\s+IN\s+SOA\s`).MatchString(out) {
		t.Errorf("dig A nope.web.zkcoord.: want NXDOMAIN with the SOA:\n%s", out)
	}
}

// TestMemberLeavesWithinTTL: a member that leaves, by Deregister or when
// its lease ends, is gone from the answers well within the TTL of the
// answers that named it (1 s here): the view answers from the cache,
// which follows the group with its watch.
func TestMemberLeavesWithinTTL(t *testing.T) {
	e := start(t, dnsview.WithTTL(time.Second))
	e.register(t, "web", "w1", "10.0.0.1:80", nil)
	e.register(t, "web", "w2", "10.0.0.2:80", nil)
	e.registerTTL(t, "web", "w3", "10.0.0.3:80", time.Second)
	targets := func() []string {
		var ts []string
		for _, rr := range e.query(t, "udp", "web.zkcoord.", dns.TypeSRV, 0).Answer {
			ts = append(ts, strings.TrimSuffix(rr.(*dns.SRV).Target, ".web.zkcoord."))
		}
		slices.Sort(ts)
		return ts
	}
	zktest.Eventually(t, 10*time.Second, func() bool { return slices.Equal(targets(), []string{"w1", "w2", "w3"}) }, "three members in DNS")
	zktest.Eventually(t, 10*time.Second, func() bool { return slices.Equal(targets(), []string{"w1", "w2"}) }, "w3 gone when its lease ended")
	e.deregister(t, "web", "w2")
	left := time.Now()
	zktest.Eventually(t, time.Second, func() bool { return slices.Equal(targets(), []string{"w1"}) }, "w2 gone from SRV answers within the TTL")
	t.Logf("w2 gone from DNS answers %v after its Deregister returned", time.Since(left))
	if r := e.query(t, "udp", "w2.web.zkcoord.", dns.TypeA, 0); r.Rcode != dns.RcodeNameError {
		t.Errorf("A w2 after it left: %v", r)
	}
	e.deregister(t, "web", "w1")
	zktest.Eventually(t, time.Second, func() bool {
		return e.query(t, "udp", "web.zkcoord.", dns.TypeSRV, 0).Rcode == dns.RcodeNameError
	}, "a group whose members all left answers NXDOMAIN")
}

// TestTruncation: an answer larger than the client's UDP buffer (512
// bytes without EDNS0, or the size it gives, up to 1232) comes truncated
// with the TC bit; over TCP it is complete; dig and Go's resolver retry over TCP by
// themselves and get every member.
func TestTruncation(t *testing.T) {
	e := start(t)
	const n = 80
	for i := range n {
		e.register(t, "big", fmt.Sprintf("m%02d", i), fmt.Sprintf("10.0.%d.%d:80", i/200, i%200+1), nil)
	}
	var fit []int
	for _, edns := range []uint16{0, 1232} {
		r := e.query(t, "udp", "big.zkcoord.", dns.TypeSRV, edns)
		fit = append(fit, len(r.Answer))
		size := max(512, int(edns))
		r.Compress = true // as it came
		if b, _ := r.Pack(); !r.Truncated || len(r.Answer) >= n || len(b) > size {
			t.Errorf("SRV big over UDP, buffer %d: TC %v, %d answers, %d bytes; want TC, fewer than %d answers, at most %d bytes", size, r.Truncated, len(r.Answer), len(b), n, size)
		}
	}
	r := e.query(t, "tcp", "big.zkcoord.", dns.TypeSRV, 0)
	if r.Truncated || len(r.Answer) != n || len(r.Extra) != n {
		t.Errorf("SRV big over TCP: TC %v, %d answers, %d additional; want all %d", r.Truncated, len(r.Answer), len(r.Extra), n)
	}
	if r := e.query(t, "udp", "big.zkcoord.", dns.TypeA, 0); !r.Truncated || len(r.Answer) >= n {
		t.Errorf("A big over UDP: TC %v, %d answers", r.Truncated, len(r.Answer))
	}
	if fit[0] >= fit[1] {
		t.Errorf("SRV big over UDP: %d answers in 512 bytes, %d in 1232", fit[0], fit[1])
	}
	// A client claiming a larger buffer gets no more than 1232 bytes (a
	// forged source reflects little): SRV big, about 4 KB, is truncated.
	r = e.query(t, "udp", "big.zkcoord.", dns.TypeSRV, 65000)
	r.Compress = true
	if b, _ := r.Pack(); !r.Truncated || len(b) > dnsview.MaxUDPSize {
		t.Errorf("SRV big over UDP, a 65000-byte buffer claimed: TC %v, %d bytes; want TC, at most %d", r.Truncated, len(b), dnsview.MaxUDPSize)
	}
	if out := e.dig(t, "+ignore", "+noedns", "SRV", "big.zkcoord."); !regexp.MustCompile(`flags: qr aa tc;`).MatchString(out) {
		t.Errorf("dig +ignore over UDP: no tc flag:\n%s", out)
	}
	out := e.dig(t, "SRV", "big.zkcoord.")
	if !strings.Contains(out, "Truncated, retrying in TCP mode") || !strings.Contains(out, fmt.Sprintf("ANSWER: %d,", n)) {
		t.Errorf("dig SRV big.zkcoord.: want a retry over TCP and %d answers:\n%s", n, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, srvs, err := e.resolver().LookupSRV(ctx, "", "", "big.zkcoord."); err != nil || len(srvs) != n {
		t.Errorf("Go's LookupSRV big: %d records, %v; want %d", len(srvs), err, n)
	}
}

// TestAllowList: groups outside the allow-list are REFUSED, whether they
// exist or not, so the answer tells nothing about them; admitted names
// that do not exist are NXDOMAIN.
func TestAllowList(t *testing.T) {
	e := start(t, dnsview.WithGroups("web", "db."))
	e.register(t, "web", "w1", "10.0.0.1:80", nil)
	e.register(t, "db.prod", "d1", "10.0.0.2:5432", nil)
	e.register(t, "secret", "s1", "10.0.0.3:22", nil)
	e.register(t, "prod.secret", "s2", "10.0.0.4:22", nil)
	for _, tc := range []struct {
		name  string
		rcode int
		n     int
	}{
		{"web.zkcoord.", dns.RcodeSuccess, 1},
		{"W1.WEB.zkcoord.", dns.RcodeSuccess, 1},
		{"db.prod.zkcoord.", dns.RcodeSuccess, 1},
		{"webhooks.zkcoord.", dns.RcodeNameError, 0}, // admitted by its prefix, absent
		{"secret.zkcoord.", dns.RcodeRefused, 0},
		{"s1.secret.zkcoord.", dns.RcodeRefused, 0},
		{"prod.secret.zkcoord.", dns.RcodeRefused, 0},
		{"nothere.zkcoord.", dns.RcodeRefused, 0}, // the same answer as for secret
		{"prod.zkcoord.", dns.RcodeRefused, 0},    // above db.prod, but no prefix of the list
		{"example.com.", dns.RcodeRefused, 0},     // not ours: no recursion
	} {
		r := e.query(t, "udp", tc.name, dns.TypeSRV, 0)
		if r.Rcode != tc.rcode || len(r.Answer) != tc.n {
			t.Errorf("SRV %s: %s with %d answers, want %s with %d", tc.name, dns.RcodeToString[r.Rcode], len(r.Answer), dns.RcodeToString[tc.rcode], tc.n)
		}
		if r.Rcode == dns.RcodeRefused && (len(r.Ns) != 0 || r.Authoritative) {
			t.Errorf("SRV %s: REFUSED with an authority section or the AA bit: %v", tc.name, r)
		}
	}
	if out := e.dig(t, "SRV", "secret.zkcoord."); !strings.Contains(out, "status: REFUSED") {
		t.Errorf("dig SRV secret.zkcoord.: want REFUSED:\n%s", out)
	}
}
