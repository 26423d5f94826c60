// Package dnsview answers DNS queries about the registry's groups from the
// replica's group caches (no ZooKeeper operation per query), over UDP and
// TCP, with github.com/miekg/dns (the library CoreDNS and Consul's DNS
// interface are built on).
//
// A group web is web.<domain>: its A and AAAA records are the members'
// IPs, its SRV records name each member (w1.web.<domain>, with its A or
// AAAA in the additional section) and its port. A member w1 is
// w1.web.<domain>: A or AAAA, SRV, and TXT with its metadata. names.go
// says how a name with dots maps to a group and a member. Unknown names
// answer NXDOMAIN, names without records of the type asked NODATA, both
// with the SOA so resolvers cache them for the TTL; names of groups
// outside the allow-list (WithGroups) answer REFUSED. A UDP answer larger
// than the client's buffer (512 bytes, or its EDNS0 size up to
// MaxUDPSize) is truncated with the TC bit set, and complete over TCP.
package dnsview

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"

	"github.com/zkcoord/zkcoord/internal/registry"
)

// MaxUDPSize caps a UDP answer, whatever buffer the client says it has
// (the size DNS Flag Day 2020 settled on, BIND's default): a query with a
// forged source reflects at most this much; the whole answer is over TCP.
const MaxUDPSize = 1232

// ErrClosed: Serve was called after Shutdown.
var ErrClosed = errors.New("dnsview: shut down")

// Registry is what the view reads: package registry's Registry.
type Registry interface {
	GroupNames(ctx context.Context) (registry.GroupList, error)
	Revision(ctx context.Context, group string) (int64, error)
	Lookup(ctx context.Context, group, id string, linearizable bool) (registry.View, error)
}

// Server answers DNS queries from a Registry. Serve serves it; Shutdown
// stops it.
type Server struct {
	o   options
	reg Registry

	tab   atomic.Pointer[table] // the last table built, for its revision
	tabMu sync.Mutex            // serializes rebuilds
	views sync.Map              // group → *groupView: the last one read

	ctx    context.Context // ends with Shutdown: bounds the queries under way
	cancel context.CancelFunc

	mu      sync.Mutex
	closed  bool
	running []*running
}

// running is one miekg/dns server that Serve started.
type running struct {
	srv  *dns.Server
	up   chan struct{} // closed once it listens
	done chan struct{} // closed once it returned
}

// New returns a Server answering from reg, or the error of an option that
// refused its value (WithGroups is required).
func New(reg Registry, opt ...Option) (*Server, error) {
	o, err := apply(opt)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{o: o, reg: reg, ctx: ctx, cancel: cancel}, nil
}

// Serve answers queries over UDP on pc and over TCP on l (either may be
// nil) until Shutdown, and returns then (nil), or at the first error of
// either (after stopping the other). It closes pc and l.
func (s *Server) Serve(pc net.PacketConn, l net.Listener) error {
	var rs []*running
	if pc != nil {
		rs = append(rs, &running{srv: &dns.Server{PacketConn: pc, Net: "udp", UDPSize: dns.DefaultMsgSize}})
	}
	if l != nil {
		rs = append(rs, &running{srv: &dns.Server{Listener: l, Net: "tcp"}})
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		for _, r := range rs {
			closeConn(r.srv)
		}
		return ErrClosed
	}
	for _, r := range rs {
		r.up, r.done = make(chan struct{}), make(chan struct{})
		r.srv.Handler = s
		r.srv.NotifyStartedFunc = sync.OnceFunc(func() { close(r.up) })
	}
	s.running = append(s.running, rs...)
	s.mu.Unlock()
	errc := make(chan error, len(rs))
	for _, r := range rs {
		go func() {
			defer close(r.done)
			errc <- r.srv.ActivateAndServe()
		}()
	}
	var first error
	for range rs {
		if err := <-errc; err != nil && first == nil {
			first = fmt.Errorf("dnsview: %w", err)
			_ = s.Shutdown(context.Background())
		}
	}
	return first
}

func closeConn(srv *dns.Server) {
	if srv.PacketConn != nil {
		_ = srv.PacketConn.Close()
	}
	if srv.Listener != nil {
		_ = srv.Listener.Close()
	}
}

// Shutdown stops the servers Serve started: they take no more queries,
// and Shutdown waits (at most until ctx ends) for the answers under way.
// Serve returns once they have stopped.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	rs := s.running
	s.running = nil
	s.mu.Unlock()
	var first error
	for _, r := range rs {
		select {
		case <-r.up:
			if err := r.srv.ShutdownContext(ctx); err != nil && first == nil {
				first = err
			}
		case <-r.done: // it never listened, or stopped by itself
		}
	}
	s.cancel()
	return first
}

// ServeDNS answers one query (dns.Handler).
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	_, tcp := w.RemoteAddr().(*net.TCPAddr)
	m, why := s.answer(req, tcp)
	if why != "" {
		s.o.log.Debug("dns: query not answered", "client", w.RemoteAddr().String(), "question", questionOf(req),
			"rcode", dns.RcodeToString[m.Rcode], "why", why)
	}
	if err := w.WriteMsg(m); err != nil {
		s.o.log.Debug("dns: write failed", "client", w.RemoteAddr().String(), "question", questionOf(req), "err", err)
	}
}

func questionOf(req *dns.Msg) string {
	if len(req.Question) == 0 {
		return ""
	}
	q := req.Question[0]
	return q.Name + " " + dns.ClassToString[q.Qclass] + " " + dns.TypeToString[q.Qtype]
}

// answer builds the reply to req, as it goes over TCP (tcp) or UDP:
// truncated to what the client can receive. why says why it refused or
// failed ("" when it answered, NXDOMAIN included).
func (s *Server) answer(req *dns.Msg, tcp bool) (m *dns.Msg, why string) {
	m = new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	size := dns.MinMsgSize
	opt := req.IsEdns0()
	if opt != nil {
		size = min(max(int(opt.UDPSize()), dns.MinMsgSize), MaxUDPSize)
	}
	if tcp {
		size = dns.MaxMsgSize
	}
	switch {
	case len(req.Question) != 1:
		m.Rcode, why = dns.RcodeFormatError, "not one question"
	case opt != nil && opt.Version() != 0:
		m.Rcode, why = dns.RcodeBadVers, "EDNS version above 0" // RFC 6891
	case req.Opcode != dns.OpcodeQuery:
		m.Rcode, why = dns.RcodeNotImplemented, "not a query"
	case req.Question[0].Qclass != dns.ClassINET:
		m.Rcode, why = dns.RcodeRefused, "class not IN"
	case req.Question[0].Qtype == dns.TypeAXFR || req.Question[0].Qtype == dns.TypeIXFR:
		m.Rcode, why = dns.RcodeRefused, "no zone transfers"
	default:
		ctx, cancel := context.WithTimeout(s.ctx, s.o.timeout)
		why = s.query(ctx, req.Question[0], m)
		cancel()
	}
	if why != "" {
		m.Authoritative = false // a refusal or a failure speaks for no zone
	}
	if opt != nil {
		m.SetEdns0(MaxUDPSize, false)
	}
	m.Truncate(size)
	return m, why
}

// query fills m with the answer to q, a query of class IN; why as for
// answer.
func (s *Server) query(ctx context.Context, q dns.Question, m *dns.Msg) (why string) {
	labels, ok := split(q.Name, s.o.domain)
	if !ok {
		m.Rcode = dns.RcodeRefused // not ours: the view does not recurse
		return "not in " + s.o.domain
	}
	if !s.o.serving() {
		m.Rcode = dns.RcodeServerFailure // cut off from ZooKeeper too long: ask another replica
		return "the replica's cache is out of date: cut off from ZooKeeper"
	}
	t, err := s.table(ctx)
	if err != nil {
		m.Rcode = dns.RcodeServerFailure
		return "list groups: " + err.Error()
	}
	read := s.reader(ctx)
	p, err := resolve(labels, t, &s.o, read)
	if err != nil {
		m.Rcode = dns.RcodeServerFailure
		return "lookup: " + err.Error()
	}
	ttl := s.o.ttl
	switch p.kind {
	case kindRefused:
		m.Rcode = dns.RcodeRefused
		return p.why
	case kindNone:
		m.Rcode = dns.RcodeNameError
	case kindApex:
		switch q.Qtype {
		case dns.TypeSOA:
			m.Answer = []dns.RR{soa(s.o.domain, ttl)}
		case dns.TypeANY:
			m.Answer = []dns.RR{hinfo(q.Name, ttl)}
		}
	case kindGroup, kindMember:
		ms := p.view.Members
		if p.kind == kindMember {
			ms = []*registry.Member{p.member}
		}
		switch q.Qtype {
		case dns.TypeANY:
			m.Answer = []dns.RR{hinfo(q.Name, ttl)}
		case dns.TypeTXT:
			if p.kind == kindMember {
				m.Answer = txtRecords(q.Name, ttl, p.member.Metadata)
			}
		default:
			target := func(mb *registry.Member) string {
				name, _ := memberName(mb.ID, p.group, s.o.domain, t, &s.o, read)
				return name
			}
			m.Answer, m.Extra = records(q.Name, q.Qtype, ttl, ms, target)
			rand.Shuffle(len(m.Answer), func(i, j int) { m.Answer[i], m.Answer[j] = m.Answer[j], m.Answer[i] })
		}
	}
	if len(m.Answer) == 0 {
		m.Ns = []dns.RR{soa(s.o.domain, ttl)} // NXDOMAIN or NODATA: cached for the TTL (RFC 2308)
	}
	return ""
}

// reader reads groups from the registry's caches, each group once per
// query. A group's members, indexed by id, are kept from one query to the
// next while the group's revision stays the same: a query of a group that
// did not change copies none of them.
func (s *Server) reader(ctx context.Context) lookup {
	var views map[string]*groupView
	return func(g string) (*groupView, error) {
		if gv, ok := views[g]; ok {
			return gv, nil
		}
		rev, err := s.reg.Revision(ctx, g)
		if err != nil {
			return nil, err
		}
		gv, ok := s.views.Load(g)
		if !ok || gv.(*groupView).Rev != rev {
			v, err := s.reg.Lookup(ctx, g, "", false)
			if err != nil {
				return nil, err
			}
			gv = newGroupView(v)
			s.views.Store(g, gv)
		}
		if views == nil {
			views = map[string]*groupView{}
		}
		views[g] = gv.(*groupView)
		return views[g], nil
	}
}

// table returns the table of the registry's current list of groups,
// building it when a group was created since the last one.
func (s *Server) table(ctx context.Context) (*table, error) {
	gl, err := s.reg.GroupNames(ctx)
	if err != nil {
		return nil, err
	}
	if t := s.tab.Load(); t != nil && t.rev == gl.Rev {
		return t, nil
	}
	s.tabMu.Lock()
	defer s.tabMu.Unlock()
	if t := s.tab.Load(); t != nil && t.rev == gl.Rev {
		return t, nil
	}
	t := newTable(gl, &s.o)
	s.tab.Store(t)
	return t, nil
}
