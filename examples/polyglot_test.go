package examples_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	zkcoordv1 "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/testing/proxy"
	"github.com/zkcoord/zkcoord/internal/testing/testenv"
)

// lineTimeout bounds the wait for one line of an example's output, or for
// its exit.
const lineTimeout = 30 * time.Second

// TestPolyglot runs the Python (examples/python) and Node (examples/node)
// examples against the test gateway, each in the background, and checks
// their output line by line as it comes, against what another client does
// and sees. A missing interpreter or package fails the test: scripts/deps.sh
// test installs them.
func TestPolyglot(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the Python and Node examples")
	}
	for _, l := range []struct {
		name  string
		setup func(t *testing.T) *lang
	}{
		{"python", python},
		{"node", node},
	} {
		t.Run(l.name, func(t *testing.T) {
			t.Parallel()
			lg := l.setup(t)
			for _, tc := range []struct {
				name string
				test func(t *testing.T, l *lang)
			}{
				{"register", testPolyRegister},
				{"watch", testPolyWatch},
				{"campaign", testPolyCampaign},
			} {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.test(t, lg)
				})
			}
		})
	}
}

// testPolyRegister: the member is registered under a lease and kept alive;
// when the lease ends (the program is stopped longer than its TTL) the
// program registers again under a new one; on SIGINT it revokes the lease
// and the member is gone at once.
func testPolyRegister(t *testing.T, l *lang) {
	g := unique("web")
	p := l.start(t, "register", "--group", g, "--id", "m1", "--value", "10.0.0.1:80", "--ttl", "3")
	registered := `registered ` + g + `/m1 = 10\.0\.0\.1:80 at revision \d+, with a 3s lease`
	p.expect(registered)
	if m := lookup(t, g, "m1"); m.GetValue() != "10.0.0.1:80" || m.GetPersistent() {
		t.Fatalf("registered member: %v, want value 10.0.0.1:80 under a lease", m)
	}

	left := watchFor(t, g, zkcoordv1.WatchGroupResponse_TYPE_LEFT, "m1")
	p.signal(syscall.SIGSTOP) // no keepalive: the lease ends after its TTL
	left()
	p.signal(syscall.SIGCONT)
	p.expect(`lease ended \(NOT_FOUND\): registering again`)
	p.expect(registered)
	lookup(t, g, "m1")

	p.signal(syscall.SIGINT)
	p.expect(`revoked the lease: ` + g + `/m1 left at revision \d+`)
	p.exit(0)
	_, err := zkcoordv1.NewRegistryServiceClient(testenv.Conn(t)).Lookup(t.Context(), &zkcoordv1.LookupRequest{
		Group: g, MemberId: "m1", Consistency: zkcoordv1.Consistency_CONSISTENCY_LINEARIZABLE})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("lookup after the program revoked its lease: %v, want NotFound", err)
	}
}

// testPolyWatch: the watcher prints the snapshot, a member another client
// registers, resumes after a broken connection without a new snapshot, and
// prints the end of a lease that owned three members as one revision.
func testPolyWatch(t *testing.T, l *lang) {
	g := unique("web")
	proxy, err := proxy.New(testenv.Gateway(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	p := l.startAt(t, proxy.Addr(), "watch", "--group", g)
	revs := [][]string{p.expect(`revision (\d+): snapshot; members \[\]`)}

	cc := testenv.Conn(t)
	leases, reg := zkcoordv1.NewLeaseServiceClient(cc), zkcoordv1.NewRegistryServiceClient(cc)
	lease, err := leases.Grant(t.Context(), &zkcoordv1.GrantRequest{Ttl: durationpb.New(30 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	register := func(id, value string) {
		t.Helper()
		if _, err := reg.Register(t.Context(), &zkcoordv1.RegisterRequest{Group: g, MemberId: id, Value: value,
			LeaseId: lease.GetLeaseId()}); err != nil {
			t.Fatal(err)
		}
	}
	register("w1", "10.0.0.1:80")
	revs = append(revs, p.expect(`revision (\d+): joined w1; members \[w1=10\.0\.0\.1:80\]`))

	// The connection breaks; w2 joins meanwhile. The watch resumes after
	// the last revision it printed: w2's join comes next, no snapshot.
	proxy.Cut()
	p.expect(`watch broke: [A-Z_]+ .*; resuming after revision ` + revs[1][1] + ` in `)
	register("w2", "10.0.0.2:80")
	proxy.Restore()
	for line := p.next(); ; line = p.next() {
		if strings.HasPrefix(line, "watch broke: ") { // retries while the gateway was out of reach
			continue
		}
		m := regexp.MustCompile(`^revision (\d+): joined w2; members \[w1=10\.0\.0\.1:80 w2=10\.0\.0\.2:80\]$`).FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("after the watch resumed: %q, want w2's join:\n%s", line, p.output())
		}
		revs = append(revs, m)
		break
	}

	// One transaction removes the three members of the lease: one revision,
	// applied and printed as one.
	register("w3", "10.0.0.3:80")
	revs = append(revs, p.expect(`revision (\d+): joined w3; members \[w1=10\.0\.0\.1:80 w2=10\.0\.0\.2:80 w3=10\.0\.0\.3:80\]`))
	if _, err := leases.Revoke(t.Context(), &zkcoordv1.RevokeRequest{LeaseId: lease.GetLeaseId()}); err != nil {
		t.Fatal(err)
	}
	last := p.expect(`revision (\d+): left (w\d), left (w\d), left (w\d); members \[\]$`)
	ids := last[2:]
	slices.Sort(ids)
	if strings.Join(ids, " ") != "w1 w2 w3" {
		t.Fatalf("the lease's end: left %v, want w1 w2 w3", ids)
	}
	increasing(t, append(revs, last))

	p.signal(syscall.SIGTERM)
	p.exit(0)
}

// testPolyCampaign: the first candidate is elected; the second queues
// behind it, and is elected with a higher fencing token when the first
// resigns on SIGTERM; it resigns by itself after leading --lead seconds.
func testPolyCampaign(t *testing.T, l *lang) {
	e := unique("cron")
	a := l.start(t, "campaign", "--election", e, "--id", "a")
	tokA := a.expect(`ELECTED: fencing token (\d+)`)
	b := l.start(t, "campaign", "--election", e, "--id", "b", "--lead", "0.2")
	b.expect(`QUEUED: 1 ahead; leader a \(token ` + tokA[1] + `\)`)

	a.signal(syscall.SIGTERM)
	a.expect(`resigning \(SIGTERM\)`)
	a.expect(`RESIGNED`)
	a.exit(0)
	tokB := b.expect(`ELECTED: fencing token (\d+)`)
	increasing(t, [][]string{tokA, tokB})
	b.expect(`resigning \(led 0\.2s\)`)
	b.expect(`RESIGNED`)
	b.exit(0)

	resp, err := zkcoordv1.NewElectionServiceClient(testenv.Conn(t)).Leader(t.Context(), &zkcoordv1.LeaderRequest{Election: e})
	if err != nil || resp.GetLeader() != nil {
		t.Fatalf("leader after both resigned: %v, %v; want none", resp.GetLeader(), err)
	}
}

// lang runs the examples of one language.
type lang struct {
	name string
	argv func(example string) []string // the command that runs an example, from examples/
	env  []string                      // added to the environment
}

// python generates the Python stubs from proto/ into a temporary directory
// and returns the Python examples, run by Debian's /usr/bin/python3.
func python(t *testing.T) *lang {
	const py = "/usr/bin/python3"
	if out, err := exec.Command(py, "-c", "import grpc, grpc_tools.protoc").CombinedOutput(); err != nil {
		t.Fatalf("the Python examples need Debian's python3-grpcio and python3-grpc-tools for %s "+
			"(apt-get install python3-grpcio python3-grpc-tools; scripts/deps.sh test installs them): %v\n%s", py, err, out)
	}
	stubs := t.TempDir()
	protos, err := filepath.Glob("../proto/zkcoord/v1/*.proto")
	if err != nil || len(protos) == 0 {
		t.Fatalf("no protos in ../proto/zkcoord/v1: %v", err)
	}
	gen := append([]string{"-m", "grpc_tools.protoc", "-I", "../proto", "--python_out=" + stubs, "--grpc_python_out=" + stubs}, protos...)
	if out, err := exec.Command(py, gen...).CombinedOutput(); err != nil {
		t.Fatalf("generating the Python stubs: %s %s: %v\n%s", py, strings.Join(gen, " "), err, out)
	}
	return &lang{
		name: "python",
		argv: func(example string) []string { return []string{py, filepath.Join("python", example+".py")} },
		env:  []string{"PYTHONPATH=" + stubs},
	}
}

// npmOnce installs examples/node's packages at most once per test binary.
var npmOnce = sync.OnceValue(func() error {
	// npm writes node_modules/.package-lock.json last: without it, the
	// packages are missing or were left half installed.
	if _, err := os.Stat("node/node_modules/.package-lock.json"); !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = "node"
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("npm ci in examples/node: %v\n%s", err, out)
	}
	return nil
})

// node returns the Node examples, their packages installed from
// package-lock.json (npm ci) when node_modules is missing.
func node(t *testing.T) *lang {
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the Node examples need %s (apt-get install nodejs npm; scripts/deps.sh test installs them): %v", tool, err)
		}
	}
	if err := npmOnce(); err != nil {
		t.Fatal(err)
	}
	return &lang{
		name: "node",
		argv: func(example string) []string { return []string{"node", filepath.Join("node", example+".js")} },
	}
}

// start runs example with --addr of the test gateway and args in the
// background; it is killed at cleanup if still running.
func (l *lang) start(t *testing.T, example string, args ...string) *proc {
	t.Helper()
	return l.startAt(t, testenv.Gateway(t), example, args...)
}

// startAt is start with the gateway at addr.
func (l *lang) startAt(t *testing.T, addr, example string, args ...string) *proc {
	t.Helper()
	argv := append(l.argv(example), append([]string{"--addr", addr}, args...)...)
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ZKCOORD_ADDR=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, l.env...)
	r, w, err := os.Pipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		cancel()
		t.Fatalf("%s: %v", strings.Join(argv, " "), err)
	}
	p := &proc{t: t, name: l.name + " " + example, cmd: cmd, grew: make(chan struct{}), exited: make(chan struct{})}
	go p.read(r)
	t.Cleanup(func() {
		cancel() // kills the process if it still runs
		<-p.exited
		t.Logf("%s (exit code %d):\n%s", strings.Join(argv, " "), cmd.ProcessState.ExitCode(), p.output())
	})
	return p
}

// proc is an example running in the background, its output (stdout and
// stderr) read line by line as it comes.
type proc struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	exited chan struct{} // closed once the output has ended and the process exited

	mu    sync.Mutex
	lines []string
	ended bool          // the output has ended
	grew  chan struct{} // closed (and replaced) when a line comes or the output ends
	seen  int           // lines before this one are consumed by expect and next
}

// read reads the output until the process closes it, then waits for the
// process.
func (p *proc) read(r *os.File) {
	defer close(p.exited)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		p.mu.Lock()
		p.lines = append(p.lines, sc.Text())
		close(p.grew)
		p.grew = make(chan struct{})
		p.mu.Unlock()
	}
	r.Close()
	p.mu.Lock()
	p.ended = true
	close(p.grew)
	p.mu.Unlock()
	p.cmd.Wait()
}

// expect waits for the first line after those consumed that matches
// pattern (anchored at the line's start), consumes the lines up to it and
// returns its submatches.
func (p *proc) expect(pattern string) []string {
	p.t.Helper()
	re := regexp.MustCompile(`^` + pattern)
	deadline := time.After(lineTimeout)
	for {
		p.mu.Lock()
		for ; p.seen < len(p.lines); p.seen++ {
			if m := re.FindStringSubmatch(p.lines[p.seen]); m != nil {
				p.seen++
				p.mu.Unlock()
				return m
			}
		}
		grew, ended := p.grew, p.ended
		p.mu.Unlock()
		if ended {
			p.t.Fatalf("%s: output ended with no line matching %q:\n%s", p.name, pattern, p.output())
		}
		select {
		case <-grew:
		case <-deadline:
			p.t.Fatalf("%s: no line matching %q within %v:\n%s", p.name, pattern, lineTimeout, p.output())
		}
	}
}

// next waits for the line after those consumed and consumes it.
func (p *proc) next() string {
	p.t.Helper()
	return p.expect(`.*`)[0]
}

// signal sends sig to the process.
func (p *proc) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("%s: signal %v: %v", p.name, sig, err)
	}
}

// exit waits for the process to exit, and fails unless with code.
func (p *proc) exit(code int) {
	p.t.Helper()
	select {
	case <-p.exited:
	case <-time.After(lineTimeout):
		p.t.Fatalf("%s: still running after %v:\n%s", p.name, lineTimeout, p.output())
	}
	if got := p.cmd.ProcessState.ExitCode(); got != code {
		p.t.Fatalf("%s: exit code %d, want %d:\n%s", p.name, got, code, p.output())
	}
}

// output returns every line of output so far.
func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// lookup returns member id of group, read linearizably, failing if absent.
func lookup(t *testing.T, group, id string) *zkcoordv1.Member {
	t.Helper()
	resp, err := zkcoordv1.NewRegistryServiceClient(testenv.Conn(t)).Lookup(t.Context(), &zkcoordv1.LookupRequest{
		Group: group, MemberId: id, Consistency: zkcoordv1.Consistency_CONSISTENCY_LINEARIZABLE})
	if err != nil || len(resp.GetMembers()) != 1 {
		t.Fatalf("lookup %s/%s: %v, %v", group, id, resp.GetMembers(), err)
	}
	return resp.GetMembers()[0]
}

// watchFor watches group from now on, and returns a function that waits
// for a message of type typ about member id. The watch stops at cleanup.
func watchFor(t *testing.T, group string, typ zkcoordv1.WatchGroupResponse_Type, id string) (wait func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	stream, err := zkcoordv1.NewRegistryServiceClient(testenv.Conn(t)).WatchGroup(ctx, &zkcoordv1.WatchGroupRequest{Group: group})
	if err == nil {
		_, err = stream.Recv() // the snapshot: the watch is in place
	}
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	seen := make(chan error, 1)
	go func() {
		for {
			msg, err := stream.Recv()
			if err != nil || msg.GetType() == typ && msg.GetMember().GetId() == id {
				seen <- err
				return
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-seen
	})
	return func() {
		t.Helper()
		select {
		case err := <-seen:
			seen <- err // for the cleanup
			if err != nil {
				t.Fatalf("watching %s for %v of %s: %v", group, typ, id, err)
			}
		case <-time.After(lineTimeout):
			t.Fatalf("no %v of %s/%s within %v", typ, group, id, lineTimeout)
		}
	}
}
