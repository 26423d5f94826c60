package main

import (
	"os"
	"regexp"
	"testing"

	"github.com/spf13/pflag"
)

// TestReadmeFlagDefaults: where README's table of `serve` flags gives a
// default as one plain value (| `--flag` | `value` |), it is the flag's
// default, so the table cannot drift from the code. Rows whose default is
// prose ("(off)", "hostname-pid", a value with a note) are not read.
func TestReadmeFlagDefaults(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	serveFlags(fs, &config{}, false)
	row := regexp.MustCompile("(?m)^\\| `--([a-z0-9-]+)` \\| `([^`|]*)` \\|")
	checked := 0
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		f := fs.Lookup(m[1])
		if f == nil {
			t.Errorf("README names --%s, which serve does not have", m[1])
			continue
		}
		checked++
		if f.DefValue != m[2] {
			t.Errorf("README gives --%s a default of %q; the flag's is %q", m[1], m[2], f.DefValue)
		}
	}
	if checked < 5 {
		t.Fatalf("read %d flag defaults from README, want the table's (at least 5)", checked)
	}
}
