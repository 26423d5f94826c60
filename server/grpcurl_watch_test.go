package server_test

import (
	"encoding/json"
	"io"
	"slices"
	"strings"
	"testing"
)

// watchDoc checks the Watch sample of docs/GRPCURL.md (example 4): four
// requests on one stream, the messages shown by watch ID (their order
// between watches varies).
func watchDoc(t *testing.T, doc string, run func(args ...string) gcResult) {
	t.Helper()
	r := run("-d", `{"create":{"group":"dns","watch_id":"1"}} {"create":{"group":"api"}} {"create":{"group":"a/b","watch_id":"3"}} {"cancel":{"watch_id":"1"}}`,
		"-max-time", "1", "localhost:7070", "zkcoord.v1.RegistryService/Watch")
	docSame(t, "Watch", docBlock(t, doc, `"watchId": "3"`), byWatchID(t, r.stdout)+r.stderr)
}

// byWatchID reorders grpcurl's output, a sequence of JSON objects, by
// their watchId (stable: each watch's messages keep their order).
func byWatchID(t *testing.T, out string) string {
	t.Helper()
	type msg struct {
		id  string
		raw string
	}
	var ms []msg
	dec := json.NewDecoder(strings.NewReader(out))
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("grpcurl printed %q: %v", out, err)
		}
		var m struct {
			WatchID string `json:"watchId"`
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		ms = append(ms, msg{m.WatchID, strings.TrimSpace(string(raw))})
	}
	slices.SortStableFunc(ms, func(a, b msg) int {
		return strings.Compare(a.id, b.id)
	})
	var b strings.Builder
	for _, m := range ms {
		b.WriteString(m.raw + "\n")
	}
	return b.String()
}
