package examples_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/testing/testenv"
)

// phpWait bounds every wait for a line of a PHP script, and every run.
const phpWait = 30 * time.Second

// TestPHP runs each PHP example (examples/php) with the php command
// against the test gateway's HTTP face, several processes at once where
// the example needs parties, and checks their output and what they did.
func TestPHP(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the PHP examples against a gateway")
	}
	requirePHP(t)
	for _, tc := range []struct {
		name string
		test func(t *testing.T)
	}{
		{"register", testPHPRegister},
		{"lookup", testPHPLookup},
		{"register2", testPHPRegister2},
		{"lookup2", testPHPLookup2},
		{"register3", testPHPRegister3},
		{"followtheleader", testPHPFollowTheLeader},
		{"followtheleader2", testPHPFollowTheLeader2},
		{"readyornot", testPHPReadyOrNot},
		{"talktoensemble", testPHPTalkToEnsemble},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.test(t)
		})
	}
}

// requirePHP fails the test, naming the packages, unless php runs with
// the curl extension.
func requirePHP(t *testing.T) {
	if _, err := exec.LookPath("php"); err != nil {
		t.Fatal("no php command: the PHP examples need Debian's php8.2-cli php8.2-curl (scripts/deps.sh test installs them)")
	}
	if out, err := exec.Command("php", "-r", `exit(extension_loaded("curl") ? 0 : 1);`).CombinedOutput(); err != nil {
		t.Fatalf("php has no curl extension: install Debian's php8.2-curl (scripts/deps.sh test does): %v %s", err, out)
	}
}

func testPHPRegister(t *testing.T) {
	g := unique("web")
	out := runPHP(t, 0, "register.php", "--group", g, "--id", "w1", "--value", "10.0.0.1:80")
	rev := match(t, out, `registered `+g+`/w1 = 10\.0\.0\.1:80 \(persistent: true\) at revision (\d+)`)[1]
	match(t, out, `registered again: revision `+rev+` \(unchanged: true\)`)
	out = runPHP(t, 0, "lookup.php", "--group", g, "--id", "w1", "--linearizable")
	match(t, out, `w1 = 10\.0\.0\.1:80 \(persistent, created at revision `+rev+`\)`)
	out = runPHP(t, 0, "register.php", "--group", g, "--id", "w1", "--deregister")
	match(t, out, `deregistered `+g+`/w1 at revision \d+`)
	runPHP(t, 1, "lookup.php", "--group", g, "--id", "w1")
	// The gateway's error, with its gRPC code.
	out = runPHP(t, 1, "register.php", "--group", g, "--id", "bad~id")
	match(t, out, `^register\.php: INVALID_ARGUMENT: invalid RegisterRequest\.member_id: `)
	out = runPHP(t, 2, "register.php", "--bogus")
	match(t, out, `unknown argument --bogus`)
}

func testPHPLookup(t *testing.T) {
	g := unique("web")
	out := runPHP(t, 0, "lookup.php", "--group", g)
	match(t, out, `group `+g+` at revision \d+ \(cached\): 0 member\(s\)`)
	runPHP(t, 0, "register.php", "--group", g, "--id", "w2", "--value", "10.0.0.2:80")
	runPHP(t, 0, "register.php", "--group", g, "--id", "w1", "--value", "10.0.0.1:80")
	out = runPHP(t, 0, "lookup.php", "--group", g, "--linearizable")
	match(t, out, `group `+g+` at revision \d+ \(linearizable\): 2 member\(s\)\n  w1 = 10\.0\.0\.1:80 \(persistent.*\n  w2 = 10\.0\.0\.2:80`)
	out = runPHP(t, 1, "lookup.php", "--group", g, "--id", "nope")
	match(t, out, g+`/nope: not found`)
}

// testPHPRegister2: the member of a process that has exited stays for its
// TTL, then leaves by itself; a later process renews a lease.
func testPHPRegister2(t *testing.T) {
	g := unique("web")
	watch := startPHP(t, "lookup2.php", "--group", g)
	watch.expect(`revision \d+: snapshot; members \[\]`)
	const ttl = 2 * time.Second
	out := runPHP(t, 0, "register2.php", "--group", g, "--id", "php-1", "--ttl", ttl.String())
	exited := time.Now()
	match(t, out, `registered `+g+`/php-1 = 10\.0\.0\.2:80 with a 2s lease [0-9a-f]{32} in [\d.]+ ms, until `)
	watch.expect(`revision \d+: joined php-1; members \[php-1=10\.0\.0\.2:80\]`)
	out = runPHP(t, 0, "lookup.php", "--group", g, "--linearizable")
	match(t, out, `php-1 = 10\.0\.0\.2:80 \(lease, `) // the process is gone, its member is not
	watch.expect(`revision \d+: left php-1; members \[\]`)
	if d := time.Since(exited); d < ttl/2 {
		t.Errorf("php-1 left %v after its process exited, before its %v TTL", d, ttl)
	}
	watch.stop()
	out = runPHP(t, 0, "lookup.php", "--group", g)
	match(t, out, `0 member\(s\)`)

	// A later request renews the lease, or registers again once it ended.
	out = runPHP(t, 0, "register2.php", "--group", g, "--id", "php-2", "--ttl", "30s")
	lease := match(t, out, `with a 30s lease ([0-9a-f]{32})`)[1]
	out = runPHP(t, 1, "register2.php", "--group", g, "--id", "php-2", "--ttl", "30s")
	match(t, out, `ALREADY_EXISTS`)
	out = runPHP(t, 0, "register2.php", "--group", g, "--id", "php-2", "--lease", lease)
	match(t, out, `renewed lease `+lease+` for 30s: `+g+`/php-2 stays until `)
	out = runPHP(t, 0, "register2.php", "--group", g, "--id", "php-3", "--lease", strings.Repeat("0", 32))
	match(t, out, `lease 0{32} has ended \(and `+g+`/php-3 with it\): registering again\nregistered `+g+`/php-3 `)
}

// testPHPLookup2: the long-poll loop sees each change made after it has
// answered; the stream shows each revision once it is whole: a lease's end
// removes two members in one revision, one line.
func testPHPLookup2(t *testing.T) {
	for _, mode := range []string{"poll", "stream"} {
		t.Run(mode, func(t *testing.T) {
			g := unique("web")
			args := []string{"--group", g}
			if mode == "stream" {
				args = append(args, "--stream")
			}
			watch := startPHP(t, "lookup2.php", args...)
			var revs [][]string
			revs = append(revs, watch.expect(`revision (\d+): snapshot; members \[\]`))
			runPHP(t, 0, "register.php", "--group", g, "--id", "a", "--value", "10.0.0.1:80")
			revs = append(revs, watch.expect(`revision (\d+): joined a; members \[a=10\.0\.0\.1:80\]`))
			runPHP(t, 0, "register.php", "--group", g, "--id", "a", "--value", "10.0.0.1:8080")
			revs = append(revs, watch.expect(`revision (\d+): updated a; members \[a=10\.0\.0\.1:8080\]`))
			runPHP(t, 0, "register3.php", "--group", g, "--members", "x,y", "--remove=")
			if mode == "stream" { // a poll may see both joins at once
				revs = append(revs, watch.expect(`revision (\d+): joined x; members \[a=10\.0\.0\.1:8080 x=10\.0\.0\.1:80\]`))
				revs = append(revs, watch.expect(`revision (\d+): joined y; members \[a=10\.0\.0\.1:8080 x=10\.0\.0\.1:80 y=10\.0\.0\.2:80\]`))
			}
			revs = append(revs, watch.expect(`revision (\d+): left x, left y; members \[a=10\.0\.0\.1:8080\]`))
			runPHP(t, 0, "register.php", "--group", g, "--id", "a", "--deregister")
			revs = append(revs, watch.expect(`revision (\d+): left a; members \[\]`))
			increasing(t, revs)
			watch.stop()
		})
	}
	// --count ends the watch.
	out := runPHP(t, 0, "lookup2.php", "--group", unique("web"), "--count", "1")
	match(t, out, `^revision \d+: snapshot; members \[\]\n$`)
}

func testPHPRegister3(t *testing.T) {
	g := unique("backend")
	out := runPHP(t, 0, "register3.php", "--group", g, "--members", "a,b,c", "--remove", "b")
	inOrder(t, out,
		`lease [0-9a-f]{32}, ttl 10s`,
		`added a = 10\.0\.0\.1:80 at revision \d+`,
		`added c = 10\.0\.0\.3:80 at revision \d+`,
		`group `+g+` at revision \d+: \[a b c\]`,
		`removed b at revision \d+`,
		`group `+g+` at revision \d+: \[a c\]`,
		`another lease registering a: refused with ALREADY_EXISTS`,
		`another lease removing a: refused with PERMISSION_DENIED`,
		`lease revoked at revision \d+: its members left together`,
		`group `+g+` at revision \d+: \[\]`)

	out = runPHP(t, 0, "register3.php", "--group", g, "--members", "k", "--remove=", "--keep", "--ttl", "30s")
	lease := match(t, out, `keeping lease ([0-9a-f]{32}): its members go when its TTL lapses`)[1]
	out = runPHP(t, 0, "lookup.php", "--group", g)
	match(t, out, `k = 10\.0\.0\.1:80 \(lease, `)
	runPHP(t, 0, "register2.php", "--group", g, "--id", "k", "--lease", lease)
}

// testPHPFollowTheLeader: two cron processes; the second runs its job only
// once the first resigns; observers follow, one long-polling, one on the
// Observe stream.
func testPHPFollowTheLeader(t *testing.T) {
	e := unique("cron")
	poll := startPHP(t, "followtheleader.php", "--election", e, "--follow")
	stream := startPHP(t, "followtheleader.php", "--election", e, "--follow", "--stream")
	observers := []*phpProc{poll, stream}
	for _, o := range observers {
		o.expect(`observer: no leader`)
	}
	a := startPHP(t, "followtheleader.php", "--election", e, "--id", "host-1", "--steps", "0", "--step", "100ms")
	t1 := a.expect(`host-1: elected leader of ` + e + ` \(token (\d+)\)`)
	a.expect(`host-1: job step 1 with token ` + t1[1])
	for _, o := range observers {
		o.expect(`observer: leader is host-1 \(token ` + t1[1] + `\)`)
	}
	b := startPHP(t, "followtheleader.php", "--election", e, "--id", "host-2", "--steps", "2", "--step", "100ms")
	b.expect(`host-2: waiting, 1 candidate\(s\) ahead, leader host-1`)
	a.expect(`host-1: job step 3 with token ` + t1[1]) // host-1 still leads, host-2 still waits
	a.signal(syscall.SIGTERM)
	a.expect(`host-1: stopped, resigning`)
	a.expect(`host-1: resigned \(was leader: true\)`)
	a.wait(0)
	t2 := b.expect(`host-2: elected leader of ` + e + ` \(token (\d+)\)`)
	increasing(t, [][]string{t1, t2})
	b.expect(`host-2: job step 1/2 with token ` + t2[1])
	b.expect(`host-2: job step 2/2 with token ` + t2[1])
	b.expect(`host-2: job done, resigning`)
	b.expect(`host-2: resigned \(was leader: true\)`)
	b.wait(0)
	for _, o := range observers {
		o.expect(`observer: leader is host-2 \(token ` + t2[1] + `\)`)
		o.expect(`observer: no leader`)
		o.stop()
	}
}

// testPHPFollowTheLeader2: three workers queue; each is woken only when the
// one ahead of it goes; tokens increase; a deposed leader's write fails.
func testPHPFollowTheLeader2(t *testing.T) {
	e := unique("jobs")
	res := filepath.Join(t.TempDir(), "token")
	args := func(id, lead string) []string {
		return []string{"--election", e, "--id", id, "--lead", lead, "--resource", res}
	}
	w1 := startPHP(t, "followtheleader2.php", args("worker-1", "0")...)
	t1 := w1.expect(`worker-1: elected, token (\d+)`)
	w1.expect(`worker-1: wrote with token ` + t1[1])
	w2 := startPHP(t, "followtheleader2.php", args("worker-2", "100ms")...)
	w2.expect(`worker-2: queued, 1 ahead, leader worker-1`)
	w3 := startPHP(t, "followtheleader2.php", args("worker-3", "100ms")...)
	w3.expect(`worker-3: queued, 2 ahead, leader worker-1`)
	w1.signal(syscall.SIGTERM)
	w1.expect(`worker-1: resigning`)
	w1.wait(0)
	t2 := w2.expect(`worker-2: elected, token (\d+)`)
	w2.expect(`worker-2: resigning`)
	w2.wait(0)
	t3 := w3.expect(`worker-3: elected, token (\d+)`)
	w3.expect(`worker-3: resigned`)
	out := w3.wait(0)
	increasing(t, [][]string{t1, t2, t3})
	// worker-3 heard nothing when worker-1 left: only worker-2, ahead of it, wakes it.
	if n := len(regexp.MustCompile(`(?m)^worker-3: queued`).FindAllString(out, -1)); n != 1 {
		t.Errorf("worker-3 was told of its place %d times, want once (woken by a departure not its predecessor's?):\n%s", n, out)
	}
	out = runPHP(t, 1, "followtheleader2.php", "--resource", res, "--write", t1[1])
	match(t, out, `write with token `+t1[1]+`: refused: token `+t1[1]+` is below `+t3[1])
}

func testPHPReadyOrNot(t *testing.T) {
	for _, mode := range []string{"--wait=30s", "--stream"} {
		g := unique("workers")
		wait := startPHP(t, "readyornot.php", "--group", g, "--min", "3", mode)
		wait.expect(`group ` + g + `: 0 of 3 members \(revision \d+\)`)
		for i := 1; i <= 3; i++ {
			runPHP(t, 0, "register2.php", "--group", g, "--id", fmt.Sprintf("w-%d", i))
		}
		wait.expect(`group ` + g + `: 3 of 3 members`)
		wait.expect(`enough resources: the workflow starts`)
		wait.wait(0)
		out := runPHP(t, 1, "readyornot.php", "--group", g, "--min", "4", "--timeout", "1s", mode)
		inOrder(t, out, `group `+g+`: 3 of 4 members`, `group `+g+`: not ready after 1s`)
	}

	for _, mode := range []string{"--wait=30s", "--stream"} {
		bar := unique("start")
		var ps []*phpProc
		for i := 1; i <= 3; i++ {
			id := fmt.Sprintf("p-%d", i)
			p := startPHP(t, "readyornot.php", "--barrier", bar, "--parties", "3", "--id", id, mode)
			p.expect(fmt.Sprintf(`%s: barrier %s has %d of 3`, id, bar, i)) // the next arrives after this one
			ps = append(ps, p)
		}
		for i, p := range ps {
			p.expect(fmt.Sprintf(`p-%d: released`, i+1))
			p.expect(fmt.Sprintf(`p-%d: left \(barrier had released: true\)`, i+1))
			p.wait(0)
		}
		out := runPHP(t, 1, "readyornot.php", "--barrier", unique("never"), "--parties", "2", "--id", "p-1", "--timeout", "1s", mode)
		inOrder(t, out, `p-1: barrier never-\S+ has 1 of 2`, `p-1: not released after 1s; leaving`, `p-1: left \(barrier had released: false\)`)
	}
}

// testPHPTalkToEnsemble: with a gateway address that is down first, every
// call goes to the next one.
func testPHPTalkToEnsemble(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close() // nothing listens there now
	live := testenv.HTTP(t)
	urls := "ZKCOORD_URL=" + dead + "," + live
	out := runPHPEnv(t, 0, []string{urls}, "talktoensemble.php")
	zk := regexp.QuoteMeta(testenv.ZooKeeper(t))
	inOrder(t, out,
		`gateway `+regexp.QuoteMeta(dead)+`: down \(`,
		`gateway `+regexp.QuoteMeta(live)+`: SERVING`,
		`1 of 2 gateway\(s\) serving`,
		`failover: `+regexp.QuoteMeta(dead)+` cannot be reached, trying `+regexp.QuoteMeta(live),
		`status from `+regexp.QuoteMeta(live)+`: replica \S+, version \S+`,
		`ZooKeeper: CONNECTED to `+zk+` since `,
		`ensemble: `+zk+`, chroot \(none\), root /testenv-\d+`,
		`session 0x[0-9a-f]+, timeout 4s, expirations 0`,
		`holding \d+ lease\(s\), watching \d+ group\(s\), \d+ long-poll\(s\) waiting`)
	// A stream fails over the same way.
	out = runPHPEnv(t, 0, []string{urls}, "lookup2.php", "--group", unique("web"), "--count", "1")
	match(t, out, `zkcoord: `+regexp.QuoteMeta(dead)+`: .*; trying `+regexp.QuoteMeta(live))
	match(t, out, `revision \d+: snapshot; members \[\]`)
	out = runPHPEnv(t, 1, []string{"ZKCOORD_URL=" + dead}, "talktoensemble.php")
	match(t, out, `0 of 1 gateway\(s\) serving`)
	match(t, out, `talktoensemble\.php: UNAVAILABLE: GET /v1/status: `)
}

// phpProc is a PHP example running in the background, its output (stdout
// and stderr) read line by line as it comes.
type phpProc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd

	mu      sync.Mutex
	lines   []string
	next    int           // lines before next were consumed by expect
	changed chan struct{} // closed and replaced on each new line and at exit
	exited  bool          // the output is complete and the process has exited
	err     error         // of cmd.Wait
}

// startPHP starts examples/php/script with args against the test gateway.
func startPHP(t *testing.T, script string, args ...string) *phpProc {
	t.Helper()
	return startPHPEnv(t, nil, script, args...)
}

// startPHPEnv starts examples/php/script with args, ZKCOORD_URL the test
// gateway's HTTP face unless env sets it.
func startPHPEnv(t *testing.T, env []string, script string, args ...string) *phpProc {
	t.Helper()
	cmd := exec.Command("php", append([]string{filepath.Join("php", script)}, args...)...)
	cmd.Env = append(os.Environ(), "ZKCOORD_URL="+testenv.HTTP(t), "ZKCOORD_TOKEN=")
	cmd.Env = append(cmd.Env, env...)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	p := &phpProc{t: t, name: script + " " + strings.Join(args, " "), cmd: cmd, changed: make(chan struct{})}
	go p.read(r)
	t.Cleanup(func() {
		p.mu.Lock()
		exited := p.exited
		p.mu.Unlock()
		if !exited {
			_ = cmd.Process.Kill()
			<-p.waitChan()
		}
		t.Logf("%s:\n%s", p.name, p.output())
	})
	return p
}

// read collects the output's lines until it ends, then waits for the process.
func (p *phpProc) read(r *os.File) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		p.mu.Lock()
		p.lines = append(p.lines, sc.Text())
		p.notify()
		p.mu.Unlock()
	}
	r.Close()
	err := p.cmd.Wait()
	p.mu.Lock()
	p.exited, p.err = true, err
	p.notify()
	p.mu.Unlock()
}

// notify wakes waiters; p.mu is held.
func (p *phpProc) notify() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// waitChan returns a channel closed once the process has exited.
func (p *phpProc) waitChan() <-chan struct{} {
	done := make(chan struct{})
	go func() {
		for {
			p.mu.Lock()
			exited, ch := p.exited, p.changed
			p.mu.Unlock()
			if exited {
				close(done)
				return
			}
			<-ch
		}
	}()
	return done
}

func (p *phpProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n") + "\n"
}

// expect waits for a line matching pattern (anchored at the line's start)
// after the lines matched so far, and returns its submatches. It fails the
// test if the process ends or phpWait passes first.
func (p *phpProc) expect(pattern string) []string {
	p.t.Helper()
	re := regexp.MustCompile(`^` + pattern)
	deadline := time.After(phpWait)
	for {
		p.mu.Lock()
		for ; p.next < len(p.lines); p.next++ {
			if m := re.FindStringSubmatch(p.lines[p.next]); m != nil {
				p.next++
				p.mu.Unlock()
				return m
			}
		}
		exited, ch := p.exited, p.changed
		p.mu.Unlock()
		if exited {
			p.t.Fatalf("%s exited (%v) without a line matching %q:\n%s", p.name, p.err, pattern, p.output())
		}
		select {
		case <-ch:
		case <-deadline:
			p.t.Fatalf("%s: no line matching %q within %v:\n%s", p.name, pattern, phpWait, p.output())
		}
	}
}

// signal sends sig to the process.
func (p *phpProc) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// stop kills the process and waits for it.
func (p *phpProc) stop() {
	_ = p.cmd.Process.Kill()
	<-p.waitChan()
}

// wait waits (at most phpWait) for the process to exit, expects exit code
// code, and returns its whole output.
func (p *phpProc) wait(code int) string {
	p.t.Helper()
	select {
	case <-p.waitChan():
	case <-time.After(phpWait):
		p.t.Fatalf("%s still runs after %v:\n%s", p.name, phpWait, p.output())
	}
	if got := p.cmd.ProcessState.ExitCode(); got != code {
		p.t.Fatalf("%s: exit code %d, want %d (%v):\n%s", p.name, got, code, p.err, p.output())
	}
	return p.output()
}

// runPHP runs examples/php/script with args against the test gateway,
// expects exit code code, and returns its output.
func runPHP(t *testing.T, code int, script string, args ...string) string {
	t.Helper()
	return runPHPEnv(t, code, nil, script, args...)
}

// runPHPEnv is runPHP with env added to the environment.
func runPHPEnv(t *testing.T, code int, env []string, script string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), phpWait)
	defer cancel()
	cmd := exec.CommandContext(ctx, "php", append([]string{filepath.Join("php", script)}, args...)...)
	cmd.Env = append(os.Environ(), "ZKCOORD_URL="+testenv.HTTP(t), "ZKCOORD_TOKEN=")
	cmd.Env = append(cmd.Env, env...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("php %s %s (%v):\n%s", script, strings.Join(args, " "), time.Since(start).Round(time.Millisecond), out)
	if got := cmd.ProcessState.ExitCode(); ctx.Err() != nil || got != code {
		t.Fatalf("php %s %s: exit code %d, want %d (%v)\n%s", script, strings.Join(args, " "), got, code, err, out)
	}
	return string(out)
}
