package main

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/client"
	"github.com/zkcoord/zkcoord/internal/testing/testenv"
)

// running is a command run in process in the background.
type running struct {
	out, err syncBuffer
	cancel   context.CancelFunc
	done     chan int // its exit status
}

func background(t *testing.T, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan int, 1)}
	go func() { r.done <- execute(ctx, nil, append(args, "--endpoints", testenv.Gateway(t)), &r.out, &r.err) }()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// wait waits for the command's exit status.
func (r *running) wait(t *testing.T) int {
	t.Helper()
	select {
	case code := <-r.done:
		r.done <- code // for the cleanup
		return code
	case <-time.After(30 * time.Second):
		t.Fatalf("still running after 30s; stdout %q, stderr %q", r.out.String(), r.err.String())
		return -1
	}
}

// runCmd runs a command in process and returns its exit status and stdout.
func runCmd(t *testing.T, args ...string) (int, string) {
	t.Helper()
	r := background(t, args...)
	code := r.wait(t)
	if code != 0 {
		t.Logf("zkcoord %q: exit %d, stderr %q", args, code, r.err.String())
	}
	return code, r.out.String()
}

// jsonLines decodes each line of out.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var docs []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("-o json printed %q, not one JSON document per line: %v", out, err)
		}
		docs = append(docs, m)
	}
	return docs
}

// TestWatchAndKeepAlive: watch prints one JSON document per event, and
// exits 0 when interrupted; keepalive --forever renews until interrupted.
func TestWatchAndKeepAlive(t *testing.T) {
	w := background(t, "watch", "cli-watch", "-o", "json")
	if code, out := runCmd(t, "register", "cli-watch", "w1", "10.0.0.1:80", "--ttl", "20s", "-o", "json"); code != 0 {
		t.Fatalf("register: exit %d", code)
	} else {
		lease := jsonLines(t, out)[0]["leaseId"].(string)
		k := background(t, "lease", "keepalive", lease, "--forever")
		waitFor(t, 30*time.Second, "keepalive --forever renews", func() bool { return strings.Count(k.out.String(), lease) >= 1 })
		k.cancel()
		if code := k.wait(t); code != 0 {
			t.Errorf("keepalive --forever interrupted: exit %d, want 0", code)
		}
	}
	waitFor(t, 30*time.Second, "watch prints the join", func() bool { return strings.Contains(w.out.String(), "TYPE_JOINED") })
	w.cancel()
	if code := w.wait(t); code != 0 {
		t.Errorf("watch interrupted: exit %d, want 0; stderr %q", code, w.err.String())
	}
	docs := jsonLines(t, w.out.String())
	if docs[0]["type"] != "TYPE_SNAPSHOT" || docs[len(docs)-1]["member"].(map[string]any)["id"] != "w1" {
		t.Errorf("watch printed %v; want a snapshot, then w1 joining", docs)
	}
	rev := docs[len(docs)-1]["revision"].(string)
	// Resumed after the snapshot's revision: the join again, no snapshot.
	r := background(t, "watch", "cli-watch", "--rev", docs[0]["revision"].(string))
	waitFor(t, 30*time.Second, "watch --rev prints the join", func() bool { return strings.Contains(r.out.String(), "joined") })
	if first := strings.Fields(strings.SplitN(r.out.String(), "\n", 2)[0]); strings.Join(first, " ") != rev+" joined w1 10.0.0.1:80" {
		t.Errorf("watch --rev printed %q; want the join at revision %s first", r.out.String(), rev)
	}
}

// TestElectionCommands: leader --wait waits for a leader (progress on
// stderr, the answer on stdout), observe prints each change, resign ends a
// lease's term, check-sequencer says whether a token is current.
func TestElectionCommands(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.New(ctx, testenv.Gateway(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := c.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)

	wait := background(t, "leader", "cli-el", "--wait")
	obs := background(t, "observe", "cli-el")
	waitFor(t, 30*time.Second, "leader --wait says it waits", func() bool { return strings.Contains(wait.err.String(), "no leader of cli-el yet") })
	lead, err := s.Campaign(ctx, "cli-el", "host-a")
	if err != nil {
		t.Fatal(err)
	}
	if code := wait.wait(t); code != 0 || !strings.Contains(wait.out.String(), "host-a") {
		t.Fatalf("leader --wait: exit %d, stdout %q", code, wait.out.String())
	}
	tok := lead.Sequencer().Token
	if code, _ := runCmd(t, "check-sequencer", "--election", "cli-el", itoa(tok)); code != 0 {
		t.Errorf("check-sequencer of the leader's token: exit %d, want 0", code)
	}
	if code, out := runCmd(t, "resign", "cli-el", "--lease", s.Lease()); code != 0 || !strings.Contains(out, "ended the term") {
		t.Errorf("resign: exit %d, %q", code, out)
	}
	if code, _ := runCmd(t, "check-sequencer", "--election", "cli-el", itoa(tok)); code != exitNo {
		t.Errorf("check-sequencer after resign: exit %d, want %d", code, exitNo)
	}
	waitFor(t, 30*time.Second, "observe prints the leader, then none", func() bool {
		o := obs.out.String()
		return strings.Contains(o, "leader ") && strings.Contains(o[strings.Index(o, "leader "):], "no leader")
	})
}

// TestBarrierAndHoldCommands: two barrier awaits release each other;
// await-group, lock release and semaphore release act as their RPCs do.
func TestBarrierAndHoldCommands(t *testing.T) {
	a := background(t, "barrier", "await", "cli-b", "2")
	waitFor(t, 30*time.Second, "the first await reports 1 of 2", func() bool { return strings.Contains(a.err.String(), "1 of 2 arrived") })
	b := background(t, "barrier", "await", "cli-b", "2")
	for _, r := range []*running{a, b} {
		if code := r.wait(t); code != 0 || !strings.Contains(r.out.String(), "true") {
			t.Errorf("barrier await: exit %d, stdout %q", code, r.out.String())
		}
	}

	g := background(t, "barrier", "await-group", "cli-g", "1")
	waitFor(t, 30*time.Second, "await-group waits", func() bool { return strings.Contains(g.err.String(), "0 of 1 members") })
	if code, _ := runCmd(t, "register", "cli-g", "m", "v", "--persistent"); code != 0 {
		t.Fatal("register")
	}
	if code := g.wait(t); code != 0 {
		t.Errorf("await-group: exit %d", code)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.New(ctx, testenv.Gateway(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := c.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	l, err := s.Lock(ctx, "cli-lock")
	if err != nil {
		t.Fatal(err)
	}
	if code, out := runCmd(t, "lock", "get", "cli-lock"); code != 0 || !strings.Contains(out, "held") {
		t.Errorf("lock get: exit %d, %q", code, out)
	}
	// ls: each kind answers; --page-size 1 pages through every group.
	if code, _ := runCmd(t, "register", "cli-g2", "m", "v", "--persistent"); code != 0 {
		t.Fatal("register")
	}
	for _, tc := range []struct{ args, want []string }{
		{[]string{"ls", "locks", "--prefix", "cli-lock"}, []string{"cli-lock", itoa(l.Token())}},
		{[]string{"ls", "groups", "--prefix", "cli-g", "--page-size", "1"}, []string{"cli-g ", "cli-g2 "}},
		{[]string{"ls", "barriers", "--prefix", "cli-b"}, []string{"cli-b "}},
		{[]string{"ls", "leases"}, []string{"lock~cli-lock"}},
		{[]string{"ls", "replicas"}, []string{"true"}},
		{[]string{"ls", "elections"}, []string{"ELECTION"}},
		{[]string{"ls", "semaphores"}, []string{"SEMAPHORE"}},
	} {
		if code, out := runCmd(t, tc.args...); code != 0 {
			t.Errorf("zkcoord %q: exit %d", tc.args, code)
		} else {
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("zkcoord %q printed %q, without %q", tc.args, out, w)
				}
			}
		}
	}
	if _, out := runCmd(t, "ls", "groups", "--prefix", "cli-g", "--page-size", "1", "-o", "json"); len(jsonLines(t, out)) < 2 {
		t.Errorf("ls groups --page-size 1 -o json printed %q: want a document per page, two pages at least", out)
	}
	if code, _ := runCmd(t, "lock", "release", "cli-lock", "--lease", s.Lease()); code != 0 {
		t.Errorf("lock release: exit %d", code)
	}
	waitFor(t, 30*time.Second, "the hold ends", func() bool { return l.Context().Err() != nil })
	p, err := s.AcquirePermit(ctx, "cli-sem", 2)
	if err != nil {
		t.Fatal(err)
	}
	if code, out := runCmd(t, "semaphore", "release", "cli-sem", "--lease", s.Lease()); code != 0 || !strings.Contains(out, "held a permit: true") {
		t.Errorf("semaphore release: exit %d, %q", code, out)
	}
	waitFor(t, 30*time.Second, "the permit ends", func() bool { return p.Context().Err() != nil })
	if code, _ := runCmd(t, "lease", "get", "0123456789abcdef0123456789abcdef"); code != exitFailed {
		t.Errorf("lease get of no lease: exit %d, want %d", code, exitFailed)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
