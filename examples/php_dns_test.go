package examples_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/dnsview"
	"github.com/zkcoord/zkcoord/internal/testing/testenv"
	"github.com/zkcoord/zkcoord/internal/testing/testenv/httpc"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/server"
)

// phpDNSAddr is where the test serves the DNS view for PHP: port 53, the
// only one a resolv.conf can name, on a loopback address of its own.
const phpDNSAddr = "127.0.0.153:53"

// TestPHPDNS: dns.php finds a service with PHP's own resolver
// (dns_get_record), through a gateway's DNS view. The machine's resolver is
// left alone: php runs in a private mount namespace (unshare -m) where
// /etc/resolv.conf names the view, as a machine that forwards the domain
// to zkcoord would; the script is the one a user runs.
func TestPHPDNS(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the PHP DNS example against a gateway")
	}
	requirePHP(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root: php runs in a mount namespace of its own (unshare -m), beside a DNS view on port 53")
	}
	sess, lay := zktest.Session(t)
	gw := testenv.ServeDNS(t, sess, phpDNSAddr, []dnsview.Option{dnsview.WithGroups("*")}, server.WithRoot(lay.Root))
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 127.0.0.153\noptions timeout:2 attempts:2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	g := unique("web")
	env := []string{"ZKCOORD_URL=" + gw.HTTP}
	runPHPEnv(t, 0, env, "register.php", "--group", g, "--id", "w1", "--value", "10.0.0.1:80")
	runPHPEnv(t, 0, env, "register.php", "--group", g, "--id", "w2", "--value", "[2001:db8::2]:8080")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if r, err := (httpc.Client{Base: gw.HTTP}).Do(ctx, "PUT", "/v1/groups/"+g+"/members/w3",
		map[string]any{"value": "10.0.0.3:80", "persistent": true, "metadata": map[string]string{"zone": "b", "version": "2.1"}}); err != nil || r.Status != 200 {
		t.Fatalf("register w3: %v, %v", r, err)
	}

	out := runDNSPHP(t, resolv, 0, "--group", g)
	match(t, out, `^`+g+`\.zkcoord: 3 member\(s\)\n`+
		`  w1\.`+g+`\.zkcoord -> 10\.0\.0\.1:80\n`+
		`  w2\.`+g+`\.zkcoord -> \[2001:db8::2\]:8080\n`+
		`  w3\.`+g+`\.zkcoord -> 10\.0\.0\.3:80\n$`)
	out = runDNSPHP(t, resolv, 0, "--group", g, "--member", "w3")
	match(t, out, `^w3\.`+g+`\.zkcoord: 10\.0\.0\.3 port 80\n  version=2\.1\n  zone=b\n$`)
	out = runDNSPHP(t, resolv, 0, "--group", g, "--pick")
	match(t, out, `^pick: w[123]\.`+g+`\.zkcoord -> \S+:\d+\n$`)

	// A member that leaves is gone from the next answers.
	runPHPEnv(t, 0, env, "register.php", "--group", g, "--id", "w2", "--deregister")
	deadline := time.Now().Add(5 * time.Second)
	for out = runDNSPHP(t, resolv, 0, "--group", g); !strings.Contains(out, "2 member(s)"); out = runDNSPHP(t, resolv, 0, "--group", g) {
		if time.Now().After(deadline) {
			t.Fatalf("w2 still in DNS 5s after it left:\n%s", out)
		}
	}
	out = runDNSPHP(t, resolv, 1, "--group", unique("nothing"))
	match(t, out, `nothing-\S+\.zkcoord: no such service`)
	out = runDNSPHP(t, resolv, 1, "--group", g, "--member", "w2")
	match(t, out, `w2\.`+g+`\.zkcoord: no such member`)
}

// runDNSPHP runs php/dns.php with args in a private mount namespace whose
// /etc/resolv.conf is resolv, expects exit code code, and returns its
// output.
func runDNSPHP(t *testing.T, resolv string, code int, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), phpWait)
	defer cancel()
	script := `mount --bind "$0" /etc/resolv.conf && exec php php/dns.php "$@"`
	cmd := exec.CommandContext(ctx, "unshare", append([]string{"-m", "sh", "-c", script, resolv}, args...)...)
	out, err := cmd.CombinedOutput()
	t.Logf("php dns.php %s:\n%s", strings.Join(args, " "), out)
	if got := cmd.ProcessState.ExitCode(); ctx.Err() != nil || got != code {
		t.Fatalf("php dns.php %s: exit code %d, want %d (%v)\n%s", strings.Join(args, " "), got, code, err, out)
	}
	return string(out)
}
