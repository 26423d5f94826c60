package dnsview_test

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/dnsview"
)

var updateDocs = flag.Bool("update", false, "rewrite the outputs of docs/DNS.md's console samples with what a live gateway prints")

// TestDNSDoc keeps docs/DNS.md true: it runs every command of the page's
// console samples, in order, in one shell, against a live gateway serving
// DNS with --dns-groups web (curl's localhost:7071 and dig's port 8600
// are rewritten to the gateway's), and compares each output with the
// lines the page shows after it: records in any order (answers are
// shuffled), message ids and SOA serials aside. With -update it writes
// the outputs into the page instead (go test -run TestDNSDoc
// ./internal/dnsview/ -update).
func TestDNSDoc(t *testing.T) {
	for _, tool := range []string{"curl", "dig", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("docs/DNS.md's samples need %s: %v (scripts/deps.sh test installs it)", tool, err)
		}
	}
	const page = "../../docs/DNS.md"
	raw, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	e := start(t, dnsview.WithGroups("web"))
	_, port, _ := net.SplitHostPort(e.gw.DNS)
	sh := newShell(t, strings.TrimPrefix(e.gw.HTTP, "http://"), port)
	lines := strings.Split(string(raw), "\n")
	var out []string // the page, rewritten with -update
	inSample, samples := false, 0
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
		samples++
		got := sh.run(cmd)
		if *updateDocs {
			out = append(out, got...)
			continue
		}
		out = append(out, shown...)
		if want, have := normalise(shown), normalise(got); want != have {
			t.Errorf("docs/DNS.md: %s\nthe page shows:\n%s\nthe gateway printed:\n%s", cmd, strings.Join(shown, "\n"), strings.Join(got, "\n"))
		}
	}
	if samples < 10 {
		t.Errorf("docs/DNS.md: %d console samples run; the page lost some?", samples)
	}
	if *updateDocs {
		if err := os.WriteFile(page, []byte(strings.Join(out, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

var (
	msgID     = regexp.MustCompile(`\bid: \d+`)
	soaSerial = regexp.MustCompile(`(\sSOA\s+\S+\s+\S+\s+)\d+`)
	spaces    = regexp.MustCompile(`\s+`)
)

// normalise makes dig's output comparable: ids and serials replaced,
// blanks collapsed, lines sorted.
func normalise(lines []string) string {
	var ls []string
	for _, l := range lines {
		l = msgID.ReplaceAllString(l, "id: <id>")
		l = soaSerial.ReplaceAllString(l, "${1}<serial>")
		ls = append(ls, strings.TrimSpace(spaces.ReplaceAllString(l, " ")))
	}
	slices.Sort(ls)
	return strings.Join(ls, "\n")
}

// shell is a bash process the samples run in, one after the other.
type shell struct {
	t   *testing.T
	in  io.Writer
	out *bufio.Reader
	n   int
}

func newShell(t *testing.T, httpAddr, dnsPort string) *shell {
	t.Helper()
	cmd := exec.Command("bash", "--noprofile", "--norc")
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "HTTP_ADDR="+httpAddr, "DNS_PORT="+dnsPort)
	in, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		_ = cmd.Wait()
	})
	// The page's samples name the gateway localhost:7071 and port 8600.
	fmt.Fprintf(in, "curl() { command curl \"${@//localhost:7071/$HTTP_ADDR}\"; }\n")
	fmt.Fprintf(in, "dig() { local a=(); for x in \"$@\"; do [ \"$x\" = 8600 ] && x=$DNS_PORT; a+=(\"$x\"); done; command dig +time=5 +tries=1 \"${a[@]}\"; }\n")
	return &shell{t: t, in: in, out: bufio.NewReader(stdout)}
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
	for len(got) > 0 && got[len(got)-1] == "" {
		got = got[:len(got)-1]
	}
	return got
}
