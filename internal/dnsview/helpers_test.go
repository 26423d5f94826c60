package dnsview_test

import (
	"context"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/dnsview"
	"github.com/zkcoord/zkcoord/internal/testing/testenv"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/server"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// env is a gateway serving DNS on a root of its own, and a registry
// client to it.
type env struct {
	gw  testenv.DNSGateway
	reg pb.RegistryServiceClient
}

// start serves a gateway with the DNS view on a free port, every group
// shown unless opt says otherwise.
func start(t testing.TB, opt ...dnsview.Option) env {
	t.Helper()
	sess, lay := zktest.Session(t)
	gw := testenv.ServeDNS(t, sess, "127.0.0.1:0", append([]dnsview.Option{dnsview.WithGroups("*")}, opt...),
		server.WithRoot(lay.Root), server.WithLogger(zktest.Logger(t)))
	cc, err := grpc.NewClient(gw.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return env{gw: gw, reg: pb.NewRegistryServiceClient(cc)}
}

// writer is a registry client of another gateway, serving root on a
// session of its own: for the writes of tests whose DNS gateway's session
// goes through a proxy.
func writer(t testing.TB, root string) env {
	t.Helper()
	sess, _ := zktest.Session(t)
	cc := testenv.Serve(t, sess, server.WithRoot(root))
	return env{reg: pb.NewRegistryServiceClient(cc)}
}

// register registers a persistent member.
func (e env) register(t testing.TB, group, id, value string, md map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.reg.Register(ctx, &pb.RegisterRequest{Group: group, MemberId: id, Value: value, Metadata: md, Persistent: true}); err != nil {
		t.Fatalf("Register %s/%s: %v", group, id, err)
	}
}

// registerTTL registers a member owned by a lease of its own with ttl,
// and returns the lease.
func (e env) registerTTL(t testing.TB, group, id, value string, ttl time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := e.reg.Register(ctx, &pb.RegisterRequest{Group: group, MemberId: id, Value: value, Ttl: durationpb.New(ttl)})
	if err != nil {
		t.Fatalf("Register %s/%s: %v", group, id, err)
	}
	return r.GetLeaseId()
}

func (e env) deregister(t testing.TB, group, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.reg.Deregister(ctx, &pb.DeregisterRequest{Group: group, MemberId: id}); err != nil {
		t.Fatalf("Deregister %s/%s: %v", group, id, err)
	}
}

// query asks the view a question over network ("udp" or "tcp"), with an
// EDNS0 buffer of edns bytes (0: no EDNS0, the 512 of plain DNS).
func (e env) query(t testing.TB, network, name string, qtype uint16, edns uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = false
	if edns > 0 {
		m.SetEdns0(edns, false)
	}
	return exchange(t, e.gw.DNS, network, m)
}

// exchange sends m to addr and returns the reply.
func exchange(t testing.TB, addr, network string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 5 * time.Second, UDPSize: 65535}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s over %s: %v", m.Question[0].Name, dns.TypeToString[m.Question[0].Qtype], network, err)
	}
	return r
}

// resolver is Go's own resolver, sending every query to the view.
func (e env) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, e.gw.DNS)
	}}
}

// dig runs dig against the view with args, and returns its output.
func (e env) dig(t testing.TB, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("dig"); err != nil {
		t.Fatal("no dig command: install Debian's dnsutils (scripts/deps.sh test does)")
	}
	host, port, _ := net.SplitHostPort(e.gw.DNS)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "dig", append([]string{"@" + host, "-p", port, "+norec", "+time=5", "+tries=1"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("dig %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// names returns the answers of r as "name type data" strings, the TTL
// left out.
func rrs(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		f := strings.Fields(rr.String())
		out = append(out, strings.Join(append([]string{f[0]}, f[3:]...), " "))
	}
	return out
}
