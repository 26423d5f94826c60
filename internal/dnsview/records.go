package dnsview

import (
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/zkcoord/zkcoord/internal/registry"
)

// addr is where a member's value says the member is: an IP (A or AAAA)
// or a host name (SRV only), and a port (SRV) when the value has one.
type addr struct {
	ip   netip.Addr // valid when the value names an IP
	host string     // fully qualified, when the value names a host
	port uint16     // 0: no port
}

// parseValue reads a member's value as an address: "10.0.0.1",
// "10.0.0.1:80", "2001:db8::1", "[2001:db8::1]:80" or "db1.example.com:5432".
// Anything else (a URL, JSON...) gives no address: the member has no A,
// AAAA or SRV record.
func parseValue(v string) (addr, bool) {
	if ip, err := netip.ParseAddr(v); err == nil && ip.Zone() == "" {
		return addr{ip: ip.Unmap()}, true
	}
	if ap, err := netip.ParseAddrPort(v); err == nil && ap.Addr().Zone() == "" && ap.Port() != 0 {
		return addr{ip: ap.Addr().Unmap(), port: ap.Port()}, true
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil || !hostName(host) {
		return addr{}, false
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return addr{}, false
	}
	return addr{host: dns.Fqdn(host), port: uint16(p)}, true
}

// hostName reports whether h is a host name (RFC 1123: letters, digits and
// '-' in labels of 1-63, at most 253 in all), not an IP.
func hostName(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return false
	}
	for _, l := range strings.Split(h, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' || strings.Trim(l, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != "" {
			return false
		}
	}
	return true
}

// records builds the answers for a query of qtype at name (owner of the
// answers) for ms, and the additional records of SRV answers. target
// names a member for SRV answers ("": the member cannot be named).
func records(name string, qtype uint16, ttl uint32, ms []*registry.Member, target func(*registry.Member) string) (answer, extra []dns.RR) {
	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
	}
	seen := map[string]bool{} // an RRset holds no duplicates (RFC 2181)
	add := func(key string, rr dns.RR) bool {
		if seen[key] {
			return false
		}
		seen[key] = true
		answer = append(answer, rr)
		return true
	}
	for _, m := range ms {
		a, ok := parseValue(m.Value)
		if !ok {
			continue
		}
		switch qtype {
		case dns.TypeA, dns.TypeAAAA:
			if rr := ipRecord(hdr(qtype), a.ip); rr != nil && rr.Header().Rrtype == qtype {
				add(a.ip.String(), rr)
			}
		case dns.TypeSRV:
			if a.port == 0 {
				continue
			}
			srv := &dns.SRV{Hdr: hdr(dns.TypeSRV), Priority: 1, Weight: 1, Port: a.port, Target: a.host}
			if a.ip.IsValid() {
				if srv.Target = target(m); srv.Target == "" {
					continue
				}
			}
			if add(fold(srv.Target)+" "+strconv.Itoa(int(a.port)), srv) && a.ip.IsValid() {
				glue := hdr(dns.TypeA)
				glue.Name = srv.Target
				extra = append(extra, ipRecord(glue, a.ip))
			}
		}
	}
	return answer, extra
}

// ipRecord is an A record for an IPv4 address, AAAA for IPv6 (nil for no
// address); the header's type is set to match.
func ipRecord(h dns.RR_Header, ip netip.Addr) dns.RR {
	switch {
	case ip.Is4():
		h.Rrtype = dns.TypeA
		return &dns.A{Hdr: h, A: ip.AsSlice()}
	case ip.Is6():
		h.Rrtype = dns.TypeAAAA
		return &dns.AAAA{Hdr: h, AAAA: ip.AsSlice()}
	}
	return nil
}

// txtRecords is one TXT record per metadata entry, "key=value" (RFC 1464),
// sorted by key; an entry longer than a TXT string (255 bytes) goes on in
// the record's next strings, which a reader joins (as for DKIM keys).
func txtRecords(name string, ttl uint32, md map[string]string) []dns.RR {
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var rrs []dns.RR
	for _, k := range keys {
		entry := k + "=" + md[k]
		var parts []string
		for len(entry) > 255 {
			parts = append(parts, escapeTXT(entry[:255]))
			entry = entry[255:]
		}
		parts = append(parts, escapeTXT(entry))
		rrs = append(rrs, &dns.TXT{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: ttl}, Txt: parts})
	}
	return rrs
}

// escapeTXT escapes the one byte miekg/dns reads as an escape when it
// packs a TXT string: the backslash.
func escapeTXT(s string) string { return strings.ReplaceAll(s, `\`, `\\`) }

// soa is the zone's SOA: in the answer of an SOA query at the domain, in
// the authority section of negative answers, where its TTL and minimum
// (both the view's TTL) bound how long resolvers cache them (RFC 2308).
func soa(domain string, ttl uint32) *dns.SOA {
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: domain, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl},
		Ns:      "ns." + domain,
		Mbox:    "hostmaster." + domain,
		Serial:  uint32(time.Now().Unix()),
		Refresh: 3600,
		Retry:   600,
		Expire:  86400,
		Minttl:  ttl,
	}
}

// hinfo is the answer to an ANY query at a name that exists (RFC 8482):
// one small record rather than every type, which would make the view an
// amplifier for spoofed UDP queries.
func hinfo(name string, ttl uint32) *dns.HINFO {
	return &dns.HINFO{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeHINFO, Class: dns.ClassINET, Ttl: ttl}, Cpu: "RFC8482"}
}
