package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestClientUsage checks that bad client command lines exit 2 with a
// message that says what is wrong, and call no gateway (none listens on
// the endpoint they are given).
func TestClientUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"get"}, "usage: zkcoord get GROUP [MEMBER]"},
		{[]string{"register", "web", "w1", "v"}, "exactly one of --ttl, --lease and --persistent"},
		{[]string{"register", "web", "w1", "v", "--ttl", "5s", "--persistent"}, "exactly one of --ttl, --lease and --persistent"},
		{[]string{"register", "web", "w1", "v", "--persistent", "--meta", "novalue"}, `--meta "novalue": want key=value`},
		{[]string{"lock", "jobs"}, "usage: zkcoord lock NAME"},
		{[]string{"lock", "jobs", "true"}, "usage: zkcoord lock NAME"}, // no --
		{[]string{"lock", "jobs", "--grace", "3s", "--", "true"}, "--grace 3s needs --ttl of at least 12s"},
		{[]string{"elect", "e", "--grace", "0s", "--", "true"}, "--grace 0s: want more than 0"},
		{[]string{"semaphore", "acquire", "s", "--", "true"}, "acquire needs --permits N"},
		{[]string{"get", "web", "-o", "yaml"}, `--output "yaml": want table or json`},
		{[]string{"get", "web", "--token", "t"}, "--token needs TLS"},
		{[]string{"get", "web", "--cert", "c.pem"}, "--cert and --key go together"},
		{[]string{"check-sequencer", "5"}, "exactly one of --lock and --election"},
		{[]string{"check-sequencer", "--lock", "l", "five"}, `TOKEN "five"`},
		{[]string{"lease", "grant", "soon"}, `TTL "soon"`},
		{[]string{"resign", "e"}, "resign needs --lease"},
		{[]string{"barrier", "await", "b", "0"}, `threshold "0"`},
		{[]string{"barrier", "join", "b", "2"}, "join needs exactly one of --lease and --ttl"},
		{[]string{"lease", "get", "--frobnicate", "x"}, "unknown flag: --frobnicate"},
	} {
		var out, errb bytes.Buffer
		args := append(tc.args, "--endpoints", "127.0.0.1:1")
		code := execute(context.Background(), nil, args, &out, &errb)
		if code != exitUsage || !strings.Contains(errb.String(), tc.want) || out.Len() != 0 {
			t.Errorf("zkcoord %q: exit %d, stdout %q, stderr %q; want exit 2 and %q", tc.args, code, out.String(), errb.String(), tc.want)
		}
	}
}
