package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/testing/testenv"
	"github.com/zkcoord/zkcoord/internal/zkx"
	"github.com/zkcoord/zkcoord/server"
)

// TestGrpcurlDoc keeps docs/GRPCURL.md's sample outputs true: it runs the
// page's commands (with the page's names, on a gateway with a root of its
// own) with the pinned grpcurl and compares what the page shows with what
// the live gateway prints: the list and describe output, every error, and
// the fields of GetStatus. Lease ids, participant ids, revisions and
// timestamps vary, so they are normalised; "..." in the page stands for
// whatever it trimmed. Every "Message:" the page quotes, and every example
// message of its table of codes, must be one the test saw.
func TestGrpcurlDoc(t *testing.T) {
	raw, err := os.ReadFile("../docs/GRPCURL.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sess, err := zkx.Dial(ctx, testenv.ZooKeeper(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sess.Close)
	addr := testenv.ServeAddr(t, sess, server.WithRoot("/"+name(t)), server.WithReplicaID("vm"))
	var messages []string // every Message: line grpcurl printed
	run := func(args ...string) gcResult {
		t.Helper()
		for i, a := range args {
			if a == "localhost:7070" {
				args[i] = addr
			}
		}
		r := grpcurlRunArgs(t, append([]string{"-plaintext"}, args...))
		// A deadline ends a stream with either message, depending on which
		// end acts first; the page names both.
		r.stderr = strings.ReplaceAll(r.stderr, "Message: "+deadlineRST, "Message: context deadline exceeded")
		for _, line := range strings.Split(r.stderr, "\n") {
			if m, ok := strings.CutPrefix(line, "  Message: "); ok {
				messages = append(messages, m)
			}
		}
		return r
	}
	withExit := func(r gcResult) string { return r.stdout + r.stderr + fmt.Sprintf("exit=%d\n", r.code) }

	// Discover the API.
	live := []string{
		run("localhost:7070", "list").stdout,
		run("localhost:7070", "list", "zkcoord.v1.LeaseService").stdout,
		run("localhost:7070", "describe", "zkcoord.v1.LeaseService").stdout,
		run("localhost:7070", "describe", "zkcoord.v1.WatchGroupResponse").stdout,
	}
	docSame(t, "list and describe", docBlock(t, doc, "grpc.health.v1.Health\n"), strings.Join(live, "\n"))

	// Status: the same fields as the page's first sample (nothing held yet).
	var got, want map[string]any
	if err := json.Unmarshal([]byte(run("localhost:7070", "zkcoord.v1.StatusService/GetStatus").stdout), &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(docBlock(t, doc, `"replicaId": "vm"`)), &want); err != nil {
		t.Fatal(err)
	}
	if g, w := slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)); !slices.Equal(g, w) {
		t.Errorf("GetStatus fields %v, the page shows %v", g, w)
	}

	// Set up what the page's errors need, with its names.
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	leases, reg := pb.NewLeaseServiceClient(cc), pb.NewRegistryServiceClient(cc)
	if _, err := reg.Register(ctx, &pb.RegisterRequest{Group: "dns", MemberId: "www", Value: "10.0.0.7:80", Persistent: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Register(ctx, &pb.RegisterRequest{Group: "api", MemberId: "php-42", Value: "10.0.2.1:9000",
		Ttl: durationpb.New(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	l, err := leases.Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	bctx, bcancel := context.WithCancel(ctx)
	defer bcancel()
	waiting, err := pb.NewBarrierServiceClient(cc).AwaitBarrier(bctx, &pb.AwaitBarrierRequest{Barrier: "nightly-etl", Threshold: 3,
		ParticipantId: "worker-1", LeaseId: l.LeaseId})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := waiting.Recv(); err != nil {
		t.Fatal(err)
	}

	// Lease lifecycle: Revoke, then KeepAlive of the revoked lease.
	revoked, err := leases.Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	lease := fmt.Sprintf(`{"lease_id":%q}`, revoked.LeaseId)
	docSame(t, "Revoke and KeepAlive", docBlock(t, doc, "Message: lease: not found or expired"),
		run("-d", lease, "localhost:7070", "zkcoord.v1.LeaseService/Revoke").stdout+
			withExit(run("-d", lease, "localhost:7070", "zkcoord.v1.LeaseService/KeepAlive")))

	// 5. Only the owner removes a member; an id held by another owner.
	docSame(t, "Deregister and Register of another's member", docBlock(t, doc, "Code: PermissionDenied"),
		run("-d", `{"group":"api","member_id":"php-42"}`, "localhost:7070", "zkcoord.v1.RegistryService/Deregister").stderr+
			run("-d", `{"group":"dns","member_id":"www","value":"10.6.6.6","ttl":"30s"}`, "localhost:7070",
				"zkcoord.v1.RegistryService/Register").stderr)

	// 6. Resigning without a candidacy.
	l2, err := leases.Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	r := run("-d", fmt.Sprintf(`{"election":"scheduler","lease_id":%q}`, l2.LeaseId), "localhost:7070",
		"zkcoord.v1.ElectionService/Resign")
	docQuotes(t, doc, r, "Code: NotFound", "election: not a candidate of this lease: scheduler")

	// 8. Another threshold while the barrier is in use; a wait past its
	// deadline.
	docSame(t, "AwaitBarrier with another threshold", docBlock(t, doc, "Code: FailedPrecondition"),
		run("-d", `{"barrier":"nightly-etl","threshold":5}`, "localhost:7070", "zkcoord.v1.BarrierService/AwaitBarrier").stderr)
	docSame(t, "AwaitBarrier past its deadline", docBlock(t, doc, "exit=68"),
		withExit(run("-d", `{"barrier":"never","threshold":2}`, "-max-time", "2", "localhost:7070",
			"zkcoord.v1.BarrierService/AwaitBarrier")))
	bcancel()

	// 10. JoinBarrier's answer; a wait over 5m.
	docSame(t, "JoinBarrier", docBlock(t, doc, `"participantId": "w1"`),
		run("-d", `{"barrier":"batch","threshold":2,"participant_id":"w1","ttl":"60s"}`, "localhost:7070",
			"zkcoord.v1.BarrierService/JoinBarrier").stdout)
	docSame(t, "Lookup with a 6m wait", docBlock(t, doc, "Message: invalid LookupRequest.wait"),
		run("-d", `{"group":"dns","after_revision":"1","wait":"6m"}`, "localhost:7070", "zkcoord.v1.RegistryService/Lookup").stderr)

	// 2. Pages of a group.
	if r := run("-d", `{"group":"dns","member_id":"db","value":"10.0.0.9:5432","persistent":true}`, "localhost:7070",
		"zkcoord.v1.RegistryService/Register"); r.code != 0 {
		t.Fatalf("Register dns/db: %s", r.stderr)
	}
	page := run("-d", `{"group":"dns","page_size":1}`, "localhost:7070", "zkcoord.v1.RegistryService/Lookup").stdout
	next := regexp.MustCompile(`"nextPageToken": "([^"]+)"`).FindStringSubmatch(page)
	if next == nil {
		t.Fatalf("no nextPageToken in %s", page)
	}
	docSame(t, "Lookup in pages", docBlock(t, doc, `"nextPageToken": "..."`), page+
		run("-d", fmt.Sprintf(`{"group":"dns","page_size":1,"page_token":%q}`, next[1]), "localhost:7070", "zkcoord.v1.RegistryService/Lookup").stdout+
		run("-d", `{"group":"dns","page_token":"forged"}`, "localhost:7070", "zkcoord.v1.RegistryService/Lookup").stderr)

	// 11. Locks: a try of a held lock, a sequencer check, a second try
	// without reentrant, a release of nothing.
	if r := run("-d", `{"lock":"inventory","ttl":"60s"}`, "localhost:7070", "zkcoord.v1.LockService/TryAcquireLock"); !strings.Contains(r.stdout, `"acquired": true`) {
		t.Fatalf("TryAcquire of a free lock: %s%s", r.stdout, r.stderr)
	}
	held := run("-d", `{"lock":"inventory","ttl":"30s"}`, "localhost:7070", "zkcoord.v1.LockService/TryAcquireLock").stdout
	docSame(t, "TryAcquire of a held lock", docBlock(t, doc, `"holders": [`), held)
	token := regexp.MustCompile(`"fencingToken": "([0-9]+)"`).FindStringSubmatch(held)
	if token == nil {
		t.Fatalf("no token in %s", held)
	}
	docSame(t, "CheckSequencer", docBlock(t, doc, `"current": true`),
		run("-d", fmt.Sprintf(`{"lock":"inventory","fencing_token":%q}`, token[1]), "localhost:7070", "zkcoord.v1.LockService/CheckSequencer").stdout)
	l3, err := leases.Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	reports := fmt.Sprintf(`{"lock":"reports","mode":"LOCK_MODE_SHARED","lease_id":%q}`, l3.LeaseId)
	run("-d", reports, "localhost:7070", "zkcoord.v1.LockService/TryAcquireLock")
	docQuotes(t, doc, run("-d", reports, "localhost:7070", "zkcoord.v1.LockService/TryAcquireLock"),
		"Code: AlreadyExists", "lock: already held by this lease: reports (holds: 1); acquire with reentrant to add one")
	release := fmt.Sprintf(`{"lock":"reports","lease_id":%q}`, l3.LeaseId)
	run("-d", release, "localhost:7070", "zkcoord.v1.LockService/ReleaseLock")
	docQuotes(t, doc, run("-d", release, "localhost:7070", "zkcoord.v1.LockService/ReleaseLock"),
		"Code: NotFound", "lock: not held by this lease: reports")

	// 4. Several watches on one stream.
	watchDoc(t, doc, run)

	// 12. Semaphores: the state, a full try, another N, a release.
	semaphoreDoc(t, ctx, cc, doc, run)

	// Errors.
	docSame(t, "Register with bad fields", docBlock(t, doc, "Message: invalid RegisterRequest.group"),
		withExit(run("-d", `{"group":"a/b","member_id":"..","value":"x"}`, "localhost:7070", "zkcoord.v1.RegistryService/Register")))
	var gotErr, wantErr any
	if err := json.Unmarshal([]byte(run("-format-error", "-d", `{"ttl":"0.5s"}`, "localhost:7070",
		"zkcoord.v1.LeaseService/Grant").stderr), &gotErr); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(docBlock(t, doc, `{"code":3,`)), &wantErr); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotErr, wantErr) {
		t.Errorf("-format-error: the page shows %v, grpcurl prints %v", wantErr, gotErr)
	}
	docQuotes(t, doc, run("-d", `{"barrier":"b","threshold":0}`, "localhost:7070", "zkcoord.v1.BarrierService/AwaitBarrier"),
		"Code: InvalidArgument", "invalid AwaitBarrierRequest.threshold: must be between 1 and 100000, not 0")
	docQuotes(t, doc, run("-d", `{"lease_id":"not-a-lease"}`, "localhost:7070", "zkcoord.v1.LeaseService/KeepAlive"),
		"Code: InvalidArgument", "malformed lease id: must be 32 lowercase hex characters")
	r = run("-d", `{"grup":"x"}`, "localhost:7070", "zkcoord.v1.RegistryService/Lookup")
	docQuotes(t, doc, r, "", "message type zkcoord.v1.LookupRequest has no known field named grup")
	if r.code != 1 || !strings.Contains(doc, "(exit 1)") {
		t.Errorf("a misspelt field: exit %d, the page says 1", r.code)
	}
	docQuotes(t, doc, run("localhost:7070", "zkcoord.v1.StatusService/GetStatus", "-d", "{}"), "", "Too many arguments")

	if !strings.Contains(strings.Join(strings.Fields(doc), " "), deadlineRST) {
		t.Errorf("GRPCURL.md does not say that a deadline may end a stream with %q", deadlineRST)
	}

	// Every message the page quotes was seen.
	for _, m := range docMessages(doc) {
		if !slices.ContainsFunc(messages, func(s string) bool { return wildMatch(m, s) }) {
			t.Errorf("the page quotes the message %q, which no call printed; seen: %q", m, messages)
		}
	}
}

// deadlineRST is the message of a stream whose deadline the gateway acted
// on first (grpc-go's server resets the stream when the deadline passes).
const deadlineRST = "stream terminated by RST_STREAM with error code: CANCEL"

// docBlock returns the first fenced block of doc (other than a command)
// that contains s.
func docBlock(t *testing.T, doc, s string) string {
	t.Helper()
	parts := strings.Split(doc, "```")
	for i := 1; i < len(parts); i += 2 {
		lang, body, _ := strings.Cut(parts[i], "\n")
		if lang != "sh" && strings.Contains(body, s) {
			return body
		}
	}
	t.Fatalf("GRPCURL.md has no sample output containing %q", s)
	return ""
}

// docMessages returns the error messages doc quotes: each "Message:" line
// of its samples, and the example messages of its table of codes.
func docMessages(doc string) []string {
	var out []string
	parts := strings.Split(doc, "```")
	for i := 1; i < len(parts); i += 2 {
		for _, line := range strings.Split(parts[i], "\n") {
			if m, ok := strings.CutPrefix(line, "  Message: "); ok {
				out = append(out, m)
			}
		}
	}
	_, table, _ := strings.Cut(doc, "| Code (exit) | When | Example message |")
	for _, line := range strings.Split(table, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) == 5 && strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			if m := strings.Trim(strings.TrimSpace(cells[3]), "`"); m != "" {
				out = append(out, m)
			}
		}
	}
	return out
}

var docNormal = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`\b[xsc]_[0-9a-f]{32}_[0-9]{10}\b`), "NODE"},
	{regexp.MustCompile(`"(hold|fencingToken|highestToken)": "[0-9a-f]+"`), `"$1": "N"`},
	{regexp.MustCompile(`\b[0-9a-f]{32}\b`), "LEASE"},
	{regexp.MustCompile(`"participantId": "[0-9a-f]{16}"`), `"participantId": "ID"`},
	{regexp.MustCompile(`"revision": "[0-9]+"`), `"revision": "REV"`},
	{regexp.MustCompile(`"slot": "s_[0-9a-f]{32}_[0-9]{10}"`), `"slot": "SLOT"`},
	{regexp.MustCompile(`"token": "[0-9]+"`), `"token": "TOKEN"`},
	{regexp.MustCompile(`[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z`), "TIME"},
}

func normalise(s string) string {
	for _, n := range docNormal {
		s = n.re.ReplaceAllString(s, n.with)
	}
	return strings.TrimRight(s, "\n") + "\n"
}

// docSame checks that live output matches a sample of the page, after
// normalising both; "..." in the sample matches anything (a line of its
// own: any lines).
func docSame(t *testing.T, what, sample, live string) {
	t.Helper()
	var re strings.Builder
	re.WriteString(`^`)
	for _, line := range strings.Split(strings.TrimRight(normalise(sample), "\n"), "\n") {
		if strings.TrimSpace(line) == "..." {
			re.WriteString(`(?:[^\n]*\n)*?`)
			continue
		}
		re.WriteString(strings.ReplaceAll(regexp.QuoteMeta(line), `\.\.\.`, `[^\n]*`) + `\n`)
	}
	re.WriteString(`$`)
	if !regexp.MustCompile(re.String()).MatchString(normalise(live)) {
		t.Errorf("%s: GRPCURL.md shows\n%s\nthe gateway prints\n%s", what, sample, live)
	}
}

// docQuotes checks that r's output has code (when not "") and quote, and
// that the page quotes it.
func docQuotes(t *testing.T, doc string, r gcResult, code, quote string) {
	t.Helper()
	out := r.stdout + r.stderr
	if !strings.Contains(out, quote) || !strings.Contains(out, code) {
		t.Errorf("grpcurl printed\n%s\nwithout %q (%s)", out, quote, code)
	}
	if !strings.Contains(strings.Join(strings.Fields(doc), " "), quote) {
		t.Errorf("GRPCURL.md does not quote %q", quote)
	}
}

// wildMatch reports whether s matches pattern, where "..." in pattern
// stands for anything.
func wildMatch(pattern, s string) bool {
	re := strings.ReplaceAll(regexp.QuoteMeta(pattern), `\.\.\.`, `.*`)
	return regexp.MustCompile(`^` + re + `$`).MatchString(s)
}
