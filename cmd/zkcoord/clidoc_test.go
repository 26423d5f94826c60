package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/testing/testenv"
)

var update = flag.Bool("update", false, "rewrite docs/CLI.md's samples with the output of this run")

// TestCLIDoc runs every ```console block of docs/CLI.md against a gateway,
// in order, and checks each sample against what the command printed
// (stdout and stderr): words, flags, headers and messages must match;
// numbers, lease IDs and timestamps may differ, and a lease ID a sample
// printed stands, in later commands, for the one this run got. A command
// line ending in "; echo $?" prints its exit status too. With -update the
// page is rewritten from this run.
func TestCLIDoc(t *testing.T) {
	raw, err := os.ReadFile("../../docs/CLI.md")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("ZKCOORD_ENDPOINTS", testenv.Gateway(t))
	ids := map[string]string{} // a lease ID the page shows -> this run's
	var page strings.Builder
	in, samples := false, 0
	lines := strings.Split(string(raw), "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		switch {
		case !in && line == "```console":
			in = true
		case in && line == "```":
			in = false
		case in && strings.HasPrefix(line, "$ zkcoord "):
			// The sample: the lines up to the next command or the block's end.
			j := i + 1
			for j < len(lines) && !strings.HasPrefix(lines[j], "$ ") && lines[j] != "```" {
				j++
			}
			sample := strings.Join(lines[i+1:j], "\n")
			cmdline := line[len("$ zkcoord "):]
			for doc, live := range ids {
				cmdline = strings.ReplaceAll(cmdline, doc, live)
			}
			live := runDocCommand(t, cmdline)
			samples++
			sampleIDs, liveIDs := leaseID.FindAllString(sample, -1), leaseID.FindAllString(live, -1)
			for k := range min(len(sampleIDs), len(liveIDs)) {
				ids[sampleIDs[k]] = liveIDs[k]
			}
			if *update {
				page.WriteString("$ zkcoord " + cmdline + "\n")
				if live != "" {
					page.WriteString(live + "\n")
				}
				i = j - 1
				continue
			}
			if !sameTokens(sample, live) {
				t.Errorf("docs/CLI.md line %d: `zkcoord %s`: the page shows\n%s\nthe command printed\n%s", i+1, cmdline, sample, live)
			}
			page.WriteString(strings.Join(lines[i:j], "\n") + "\n")
			i = j - 1
			continue
		}
		page.WriteString(line)
		if i < len(lines)-1 {
			page.WriteString("\n")
		}
	}
	if samples < 10 {
		t.Fatalf("docs/CLI.md: %d samples in ```console blocks; want the example session", samples)
	}
	if *update {
		if err := os.WriteFile("../../docs/CLI.md", []byte(page.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// runDocCommand runs one command line of the page in process, and returns
// what it printed, with its exit status when the line asks for it.
func runDocCommand(t *testing.T, cmdline string) string {
	t.Helper()
	line, echo := strings.CutSuffix(cmdline, "; echo $?")
	args, err := splitShell(line)
	if err != nil {
		t.Fatalf("%s: %v", cmdline, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out syncBuffer
	code := execute(ctx, nil, args, &out, &out)
	s := strings.TrimRight(out.String(), "\n")
	if echo {
		s = strings.TrimLeft(s+"\n"+fmt.Sprint(code), "\n")
	} else if code != 0 {
		t.Errorf("zkcoord %s: exit %d:\n%s", cmdline, code, s)
	}
	return s
}

// tokenRe splits output into words and punctuation.
var tokenRe = regexp.MustCompile(`[\w.:+/-]+|\S`)

// varying are the tokens that differ from run to run.
var (
	leaseID = regexp.MustCompile(`\b[0-9a-f]{32}\b`)
	varying = []*regexp.Regexp{
		regexp.MustCompile(`^[0-9a-f]{32}$`),
		regexp.MustCompile(`^\d+$`),
		regexp.MustCompile(`^\d{4}-\d\d-\d\dT[\d:.]+Z$`),
		regexp.MustCompile(`^\d+(\.\d+)?(ms|s|m|h)$`), // a TTL left, say
	}
)

// sameTokens compares a sample with live output token by token: equal,
// or both of a kind that varies from run to run.
func sameTokens(sample, live string) bool {
	st, lt := tokenRe.FindAllString(sample, -1), tokenRe.FindAllString(live, -1)
	if len(st) != len(lt) {
		return false
	}
	for i := range st {
		if st[i] == lt[i] {
			continue
		}
		same := false
		for _, re := range varying {
			same = same || (re.MatchString(st[i]) && re.MatchString(lt[i]))
		}
		if !same {
			return false
		}
	}
	return true
}

// splitShell splits a command line into words, with '...' and "..."
// quoting as in sh (no expansion).
func splitShell(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t':
			if inWord {
				words, inWord = append(words, cur.String()), false
				cur.Reset()
			}
		case '\'', '"':
			j := strings.IndexByte(s[i+1:], c)
			if j < 0 {
				return nil, fmt.Errorf("unterminated %c", c)
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
