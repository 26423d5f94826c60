package examples_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/testing/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// runTimeout bounds one run of an example.
const runTimeout = 60 * time.Second

// TestExamples builds each example once and runs it against the test
// gateway, checking its exit code and key lines of its output.
func TestExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs every example")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to build the examples with:", err)
	}
	b := &builder{dir: t.TempDir(), built: map[string]*build{}}
	for _, tc := range []struct {
		name string
		test func(t *testing.T, b *builder)
	}{
		{"register", testRegister},
		{"lookup", testLookup},
		{"register-ephemeral", testRegisterEphemeral},
		{"watch-group", testWatchGroup},
		{"add-remove", testAddRemove},
		{"follow-the-leader", testFollowTheLeader},
		{"follow-the-leader-herd", testFollowTheLeaderHerd},
		{"ready-or-not", testReadyOrNot},
		{"talk-to-ensemble", testTalkToEnsemble},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.test(t, b)
		})
	}
}

func testRegister(t *testing.T, b *builder) {
	g := unique("web")
	out := b.run(t, 0, "register", "-group", g, "-id", "w1", "-value", "10.0.0.1:80")
	rev := match(t, out, `registered `+g+`/w1 = 10\.0\.0\.1:80 \(persistent: true\) at revision (\d+)`)[1]
	match(t, out, `registered again: revision `+rev+` \(unchanged: true\)`)
	out = b.run(t, 0, "lookup", "-group", g, "-id", "w1", "-linearizable")
	match(t, out, `w1 = 10\.0\.0\.1:80 \(persistent, created at revision `+rev+`\)`)
	out = b.run(t, 0, "register", "-group", g, "-id", "w1", "-deregister")
	match(t, out, `deregistered `+g+`/w1`)
}

func testLookup(t *testing.T, b *builder) {
	g := unique("web")
	out := b.run(t, 0, "lookup", "-group", g)
	match(t, out, `group `+g+` at revision \d+ \(cached\): 0 member\(s\)`)
	b.run(t, 0, "register", "-group", g, "-id", "w2", "-value", "10.0.0.2:80")
	b.run(t, 0, "register", "-group", g, "-id", "w1", "-value", "10.0.0.1:80")
	out = b.run(t, 0, "lookup", "-group", g, "-linearizable")
	match(t, out, `group `+g+` at revision \d+ \(linearizable\): 2 member\(s\)\n  w1 = 10\.0\.0\.1:80 \(persistent.*\n  w2 = 10\.0\.0\.2:80`)
	out = b.run(t, 1, "lookup", "-group", g, "-id", "nope")
	match(t, out, g+`/nope: not found`)
}

func testRegisterEphemeral(t *testing.T, b *builder) {
	g := unique("web")
	out := b.run(t, 0, "register-ephemeral", "-group", g, "-ttl", "1s")
	inOrder(t, out,
		`one-shot: registered `+g+`/php-1 with a 1s lease`,
		`session: registered `+g+`/daemon-1`,
		`one-shot: php-1 expired`,
		`members after the one-shot lease lapsed: \[daemon-1\]`,
		`session: closed`,
		`members after the session closed: \[\]`)

	out = b.run(t, 0, "register-ephemeral", "-mode", "oneshot", "-group", g, "-id", "php-2", "-ttl", "30s")
	match(t, out, `one-shot: registered `+g+`/php-2 = 10\.0\.0\.2:80 with a 30s lease [0-9a-f]{32}; exiting`)
	out = b.run(t, 0, "lookup", "-group", g, "-linearizable")
	match(t, out, `php-2 = 10\.0\.0\.2:80 \(lease,`) // it outlives the process
}

func testWatchGroup(t *testing.T, b *builder) {
	out := b.run(t, 0, "watch-group", "-group", unique("web"))
	lines := inOrder(t, out,
		`revision (\d+): snapshot; members \[\]`,
		`revision (\d+): joined w-a; members \[w-a=10\.0\.0\.1:80\]`,
		`revision (\d+): joined w-b; members \[w-a=10\.0\.0\.1:80 w-b=10\.0\.0\.2:80\]`,
		`revision (\d+): updated w-a; members \[w-a=10\.0\.0\.1:8080 w-b=10\.0\.0\.2:80\]`,
		`revision (\d+): left w-a; members \[w-b=10\.0\.0\.2:80\]`,
		`revision (\d+): left w-b; members \[\]`)
	increasing(t, lines)
}

func testAddRemove(t *testing.T, b *builder) {
	g := unique("web")
	out := b.run(t, 0, "add-remove", "-group", g, "-members", "a,b,c", "-remove", "b")
	inOrder(t, out,
		`added a = 10\.0\.0\.1:80 at revision \d+`,
		`added c = 10\.0\.0\.3:80 at revision \d+`,
		`group `+g+` at revision \d+: \[a b c\]`,
		`removed b`,
		`group `+g+` at revision \d+: \[a c\]`,
		`another session registering a: refused with AlreadyExists`,
		`another session removing a: refused with PermissionDenied`,
		`session closed`,
		`group `+g+` at revision \d+: \[\]`)
}

func testFollowTheLeader(t *testing.T, b *builder) {
	e := unique("cron")
	out := b.run(t, 0, "follow-the-leader", "-election", e, "-candidates", "3", "-lead", "100ms")
	for i := 1; i <= 3; i++ {
		match(t, out, fmt.Sprintf(`node-%d: elected leader of %s \(token \d+\)`, i, e))
		match(t, out, fmt.Sprintf(`node-%d: resigned`, i))
	}
	match(t, out, `observer: leader is node-\d \(token \d+\)`)
	observed := regexp.MustCompile(`(?m)^observer: .*$`).FindAllString(out, -1)
	if len(observed) == 0 || observed[len(observed)-1] != "observer: no leader" {
		t.Fatalf("the observer's last word is not \"no leader\":\n%s", out)
	}
	match(t, out, `every candidate led and resigned; no one leads\n$`)
}

func testFollowTheLeaderHerd(t *testing.T, b *builder) {
	out := b.run(t, 0, "follow-the-leader-herd", "-election", unique("jobs"), "-candidates", "3", "-lead", "50ms")
	inOrder(t, out,
		`worker-1: elected, token \d+`,
		`worker-2: queued, 1 ahead, leader worker-1`,
		`worker-3: queued, 2 ahead, leader worker-1`,
		`worker-1: resigning`,
		`worker-2: elected`,
		`worker-2: resigning`,
		`worker-3: elected`,
		`worker-3: resigning`)
	var tokens [][]string
	for i := 1; i <= 3; i++ {
		tokens = append(tokens, match(t, out, fmt.Sprintf(`worker-%d: elected, token (\d+)`, i)))
	}
	increasing(t, tokens)
	m := match(t, out, `tokens in order of election: \[(\d+) \d+ (\d+)\]`)
	match(t, out, `late write from worker-1 with token `+m[1]+`: refused: token `+m[1]+` is below `+m[2])
}

func testReadyOrNot(t *testing.T, b *builder) {
	g, bar := unique("workers"), unique("start")
	out := b.run(t, 0, "ready-or-not", "-group", g, "-min", "3", "-barrier", bar, "-parties", "3")
	inOrder(t, out,
		`group `+g+`: 0 of 3 members`,
		`registering w-1`,
		`registering w-3`,
		`group `+g+`: 3 of 3 members`,
		`enough resources: the workflow starts`,
		`p-1: barrier `+bar+` has 1 of 3`,
		`p-3: barrier `+bar+` has 3 of 3`)
	for i := 1; i <= 3; i++ {
		inOrder(t, out, fmt.Sprintf(`p-%d: released`, i), fmt.Sprintf(`p-%d: left \(barrier had released: true\)`, i))
	}
}

func testTalkToEnsemble(t *testing.T, b *builder) {
	// The address comes from ZKCOORD_ADDR here, to check that it is honoured.
	out := b.runEnv(t, 0, []string{"ZKCOORD_ADDR=" + testenv.Gateway(t)}, "talk-to-ensemble")
	zk := regexp.QuoteMeta(testenv.ZooKeeper(t))
	match(t, out, `ZooKeeper: CONNECTED to `+zk+` since `)
	match(t, out, `ensemble: `+zk+`, chroot \(none\), root /testenv-\d+`)
	match(t, out, `session 0x[0-9a-f]+, timeout \d+s, expirations 0`)
	match(t, out, `health \(server\): SERVING`)
	match(t, out, `health zkcoord\.v1\.RegistryService: SERVING`)
}

// builder builds each example at most once, into dir.
type builder struct {
	dir   string
	mu    sync.Mutex
	built map[string]*build
}

type build struct {
	once sync.Once
	bin  string
	err  error
}

// bin returns the binary of the example name, building it on first use.
func (b *builder) bin(t *testing.T, name string) string {
	t.Helper()
	b.mu.Lock()
	bd, ok := b.built[name]
	if !ok {
		bd = &build{}
		b.built[name] = bd
	}
	b.mu.Unlock()
	bd.once.Do(func() {
		bd.bin = filepath.Join(b.dir, name)
		cmd := exec.Command("go", "build", "-o", bd.bin, "./examples/"+name)
		cmd.Dir = ".." // the repository's root
		if out, err := cmd.CombinedOutput(); err != nil {
			bd.err = fmt.Errorf("go build ./examples/%s: %v\n%s", name, err, out)
		}
	})
	if bd.err != nil {
		t.Fatal(bd.err)
	}
	return bd.bin
}

// run runs the example name with -addr of the test gateway and args,
// expects exit code code, and returns its output.
func (b *builder) run(t *testing.T, code int, name string, args ...string) string {
	t.Helper()
	return b.runEnv(t, code, nil, name, append([]string{"-addr", testenv.Gateway(t)}, args...)...)
}

// runEnv runs the example name with args and env added to the environment
// (ZKCOORD_ADDR removed), expects exit code code, and returns its output.
func (b *builder) runEnv(t *testing.T, code int, env []string, name string, args ...string) string {
	t.Helper()
	bin := b.bin(t, name)
	ctx, cancel := context.WithTimeout(t.Context(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ZKCOORD_ADDR=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("%s %s (%v):\n%s", name, strings.Join(args, " "), time.Since(start).Round(time.Millisecond), out)
	if got := cmd.ProcessState.ExitCode(); ctx.Err() != nil || got != code {
		t.Fatalf("%s %s: exit code %d, want %d (%v)\n%s", name, strings.Join(args, " "), got, code, err, out)
	}
	return string(out)
}

var seq atomic.Int64

// unique returns a name no other test run uses.
func unique(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano(), seq.Add(1))
}

// match fails unless pattern (multi-line mode) matches out, and returns the
// match and its submatches.
func match(t *testing.T, out, pattern string) []string {
	t.Helper()
	m := regexp.MustCompile(`(?m)` + pattern).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("output does not match %q:\n%s", pattern, out)
	}
	return m
}

// inOrder fails unless each pattern matches a line of out after the line
// the previous one matched, and returns the matches.
func inOrder(t *testing.T, out string, patterns ...string) [][]string {
	t.Helper()
	lines := strings.Split(out, "\n")
	var ms [][]string
	i := 0
	for _, p := range patterns {
		re := regexp.MustCompile(`^` + p)
		for ; i < len(lines) && !re.MatchString(lines[i]); i++ {
		}
		if i == len(lines) {
			t.Fatalf("no line matches %q after those of the patterns before it:\n%s", p, out)
		}
		ms = append(ms, re.FindStringSubmatch(lines[i]))
		i++
	}
	return ms
}

// increasing fails unless the first submatches of ms are strictly increasing
// numbers.
func increasing(t *testing.T, ms [][]string) {
	t.Helper()
	last := int64(-1)
	for _, m := range ms {
		n, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || n <= last {
			t.Fatalf("%q does not follow %d", m[0], last)
		}
		last = n
	}
}
