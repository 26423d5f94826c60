package server_test

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/testing/testenv"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/server"
)

var updateDocs = flag.Bool("update", false, "rewrite the outputs of the docs' console samples with what a live gateway prints")

// TestHTTPDoc keeps docs/HTTP.md true: it runs every command of the
// page's console samples, in order, in one shell (variables carry over),
// against a live gateway with a root of its own, and compares each output
// with the lines the page shows after it. Ids, revisions, times and other
// values that change from run to run are normalised. With -update it
// writes the outputs into the page instead (go test -run TestHTTPDoc
// ./server/ -update).
func TestHTTPDoc(t *testing.T) {
	for _, tool := range []string{"curl", "jq", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("docs/HTTP.md's samples need %s: %v (scripts/test.sh installs it)", tool, err)
		}
	}
	const page = "../docs/HTTP.md"
	raw, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	sess, lay := zktest.Session(t)
	_, base := testenv.ServeBoth(t, sess, server.WithRoot(lay.Root), server.WithReplicaID("vm"))
	sh := newShell(t, strings.TrimPrefix(base, "http://"))
	lines := strings.Split(string(raw), "\n")
	var out []string // the page, rewritten with -update
	inSample := false
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		out = append(out, l)
		switch {
		case l == "```console":
			inSample = true
			continue
		case inSample && l == "```":
			inSample = false
			continue
		case !inSample || !strings.HasPrefix(l, "$ "):
			continue
		}
		cmd := strings.TrimPrefix(l, "$ ")
		var shown []string
		for i+1 < len(lines) && !strings.HasPrefix(lines[i+1], "$ ") && lines[i+1] != "```" {
			i++
			shown = append(shown, lines[i])
		}
		got := sh.run(cmd)
		if *updateDocs {
			out = append(out, got...)
			continue
		}
		out = append(out, shown...)
		if want, have := normaliseSample(shown), normaliseSample(got); want != have {
			t.Errorf("docs/HTTP.md: %s\nthe page shows:\n%s\nthe gateway printed:\n%s", cmd, strings.Join(shown, "\n"), strings.Join(got, "\n"))
		}
	}
	if *updateDocs {
		if err := os.WriteFile(page, []byte(strings.Join(out, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// shell is a bash process the samples run in, one after the other.
type shell struct {
	t   *testing.T
	in  io.Writer
	out *bufio.Reader
	n   int
}

func newShell(t *testing.T, addr string) *shell {
	t.Helper()
	cmd := exec.Command("bash", "--noprofile", "--norc")
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "ZK_ADDR="+addr)
	in, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		_ = cmd.Wait()
	})
	s := &shell{t: t, in: in, out: bufio.NewReader(stdout)}
	// The page's samples name the gateway localhost:7071.
	fmt.Fprintf(in, "curl() { command curl \"${@//localhost:7071/$ZK_ADDR}\"; }\n")
	return s
}

// run runs cmd and returns the lines it printed.
func (s *shell) run(cmd string) []string {
	s.n++
	mark := fmt.Sprintf("__sample_%d_done__", s.n)
	fmt.Fprintf(s.in, "%s\necho; echo %s\n", cmd, mark)
	var got []string
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		l, err := s.out.ReadString('\n')
		if err != nil {
			s.t.Fatalf("sample %q: %v", cmd, err)
		}
		l = strings.TrimRight(l, "\n")
		if l == mark {
			break
		}
		got = append(got, l)
	}
	// The echo before the mark ends a last line without a newline.
	for len(got) > 0 && got[len(got)-1] == "" {
		got = got[:len(got)-1]
	}
	return got
}

var (
	hexID     = regexp.MustCompile(`\b[0-9a-f]{32}\b`)
	timestamp = regexp.MustCompile(`\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z\b`)
	sessionID = regexp.MustCompile(`0x[0-9a-f]+`)
	candidate = regexp.MustCompile(`[cxs]_[0-9a-f]{32}_\d{10}`)
	addr      = regexp.MustCompile(`127\.0\.0\.1:\d+`)
	number    = regexp.MustCompile(`"\d+"`)
)

// volatile are the JSON fields whose values change from run to run.
var volatile = map[string]bool{"revision": true, "createRevision": true, "modRevision": true, "fencingToken": true,
	"highestToken": true, "hold": true, "token": true,
	"server": true, "servers": true, "leases": true, "watchedGroups": true, "sessionTimeout": true, "root": true,
	"retryDelay": true, "id": false}

// normaliseSample makes sample output comparable: JSON lines are decoded and
// re-encoded with volatile values replaced, other lines have ids, times
// and addresses replaced.
func normaliseSample(lines []string) string {
	var b strings.Builder
	for _, l := range lines {
		// protobuf-go's messages put a space or a no-break space after
		// "proto:", depending on a hash of the binary (detrand): a build
		// must not change the page.
		l = strings.ReplaceAll(l, "\u00a0", " ")
		var v any
		if json.Unmarshal([]byte(l), &v) == nil {
			v = scrub(v)
			data, _ := json.Marshal(v)
			l = string(data)
		}
		l = candidate.ReplaceAllString(l, "<candidate>")
		l = hexID.ReplaceAllString(l, "<id>")
		l = timestamp.ReplaceAllString(l, "<time>")
		l = sessionID.ReplaceAllString(l, "<session>")
		l = addr.ReplaceAllString(l, "<addr>")
		b.WriteString(l + "\n")
	}
	return b.String()
}

func scrub(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if volatile[k] || (k == "nextPageToken" && e != "") {
				x[k] = "<volatile>"
				continue
			}
			x[k] = scrub(e)
		}
	case []any:
		for i, e := range x {
			x[i] = scrub(e)
		}
	case string:
		return number.ReplaceAllString(x, "<n>")
	}
	return v
}
