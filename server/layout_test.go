package server_test

import (
	"context"
	"encoding/json"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/barrier"
	"github.com/zkcoord/zkcoord/internal/election"
	"github.com/zkcoord/zkcoord/internal/lock"
	"github.com/zkcoord/zkcoord/internal/registry"
	"github.com/zkcoord/zkcoord/internal/semaphore"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/testing/testenv"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/internal/zkx"
	"github.com/zkcoord/zkcoord/server"
)

// layoutEntry is one path kind of docs/LAYOUT.md's tree.
type layoutEntry struct {
	path      string // relative to the root, e.g. "leases/<key>/owner"
	text      string // what the page says about it
	re        *regexp.Regexp
	ephemeral bool
	seen      int
}

// readLayout parses the tree of docs/LAYOUT.md: a path per line, indented
// under its directory, with what it holds from column 30 on (continued on
// the lines below).
func readLayout(t *testing.T) []*layoutEntry {
	t.Helper()
	raw, err := os.ReadFile("../docs/LAYOUT.md")
	if err != nil {
		t.Fatal(err)
	}
	_, tree, ok := strings.Cut(string(raw), "```\n<root>/\n")
	tree, _, _ = strings.Cut(tree, "```")
	if !ok {
		t.Fatal("LAYOUT.md has no tree starting with <root>/")
	}
	type dir struct {
		indent int
		path   string
	}
	var dirs []dir
	var out []*layoutEntry
	seg := regexp.MustCompile(`<[^>]+>|[0-9]{10}`)
	for _, line := range strings.Split(tree, "\n") {
		indent := len(line) - len(strings.TrimLeft(line, " "))
		if strings.TrimSpace(line) == "" {
			continue
		}
		if indent >= 30 { // a continuation of the description
			out[len(out)-1].text += " " + strings.TrimSpace(line)
			continue
		}
		f := strings.Fields(line)
		for len(dirs) > 0 && dirs[len(dirs)-1].indent >= indent {
			dirs = dirs[:len(dirs)-1]
		}
		p := strings.TrimSuffix(f[0], "/")
		if len(dirs) > 0 {
			p = dirs[len(dirs)-1].path + "/" + p
		}
		if strings.HasSuffix(f[0], "/") {
			dirs = append(dirs, dir{indent, p})
		}
		var re strings.Builder
		last := 0
		for _, m := range seg.FindAllStringIndex(p, -1) {
			re.WriteString(regexp.QuoteMeta(p[last:m[0]]))
			if p[m[0]] == '<' {
				re.WriteString(`[^/]+`)
			} else {
				re.WriteString(`[0-9]{10}`)
			}
			last = m[1]
		}
		re.WriteString(regexp.QuoteMeta(p[last:]))
		text := strings.Join(f[1:], " ")
		out = append(out, &layoutEntry{path: p, text: text, re: regexp.MustCompile(`^` + re.String() + `$`),
			ephemeral: strings.HasPrefix(text, "EPHEMERAL")})
	}
	return out
}

// TestLayoutDoc: a gateway's live tree is what docs/LAYOUT.md says. With a
// lease owning a member, a candidacy, a barrier place and a lock, sequencer
// checks of a lock and an election, a persistent
// member, an update and a linearizable read, every path kind of the page
// exists, nothing else does (directories in the middle of a listed path
// aside), exactly the listed ephemerals are ephemeral, and the records hold
// only the fields the page names.
func TestLayoutDoc(t *testing.T) {
	entries := readLayout(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sess, err := zkx.Dial(ctx, testenv.ZooKeeper(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sess.Close)
	root := "/" + name(t)
	addr := testenv.ServeAddr(t, sess, server.WithRoot(root), server.WithReplicaID("r1"))
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	lay := zktest.Layout{Root: root}

	l, err := pb.NewLeaseServiceClient(cc).Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	reg := pb.NewRegistryServiceClient(cc)
	for _, r := range []*pb.RegisterRequest{
		{Group: "web", MemberId: "w1", Value: "10.0.0.1:80", Metadata: map[string]string{"zone": "a"}, LeaseId: l.LeaseId},
		{Group: "web", MemberId: "w1", Value: "10.0.0.1:81", Metadata: map[string]string{"zone": "a"}, LeaseId: l.LeaseId},
		{Group: "dns", MemberId: "www", Value: "10.0.0.7:80", Persistent: true},
	} {
		if _, err := reg.Register(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := reg.Deregister(ctx, &pb.DeregisterRequest{Group: "dns", MemberId: "www"}); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Lookup(ctx, &pb.LookupRequest{Group: "web", Consistency: pb.Consistency_CONSISTENCY_LINEARIZABLE}); err != nil {
		t.Fatal(err)
	}
	cctx, ccancel := context.WithCancel(ctx)
	camp, err := pb.NewElectionServiceClient(cc).Campaign(cctx, &pb.CampaignRequest{Election: "e", Value: "v", LeaseId: l.LeaseId})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := camp.Recv(); err != nil || r.Status != pb.CampaignResponse_STATUS_ELECTED {
		t.Fatalf("Campaign: %v, %v", r, err)
	}
	ccancel() // the candidacy stays: its lease owns it
	bar, err := pb.NewBarrierServiceClient(cc).AwaitBarrier(ctx, &pb.AwaitBarrierRequest{Barrier: "b", Threshold: 1,
		ParticipantId: "p1", LeaseId: l.LeaseId})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := bar.Recv(); err != nil || !r.Released {
		t.Fatalf("AwaitBarrier: %v, %v", r, err)
	}
	locks := pb.NewLockServiceClient(cc)
	held, err := locks.TryAcquireLock(ctx, &pb.TryAcquireLockRequest{Lock: "db", LeaseId: l.LeaseId})
	if err != nil || !held.Acquired {
		t.Fatalf("TryAcquire: %v, %v", held, err)
	}
	for _, r := range []*pb.CheckSequencerRequest{{Lock: "db", FencingToken: held.FencingToken}, {Election: "e", FencingToken: 1}} {
		if _, err := locks.CheckSequencer(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if r, err := pb.NewSemaphoreServiceClient(cc).TryAcquireSemaphore(ctx, &pb.TryAcquireSemaphoreRequest{Semaphore: "s", Permits: 2,
		Value: "w1", LeaseId: l.LeaseId}); err != nil || !r.GetAcquired() {
		t.Fatalf("TryAcquireSemaphore: %v, %v", r, err)
	}
	c := sess.Conn()
	zktest.Eventually(t, 10*time.Second, func() bool {
		ok, _, err := c.Exists(lay.Replica("r1"))
		return err == nil && ok
	}, "replica r1 not announced")

	// Walk the tree and match each znode to the page.
	implicit := func(p string) bool { // a directory in the middle of a listed path
		return slices.ContainsFunc(entries, func(e *layoutEntry) bool {
			parts := strings.Split(e.path, "/")
			for i := 1; i < len(parts); i++ {
				if dirRE(strings.Join(parts[:i], "/")).MatchString(p) {
					return true
				}
			}
			return false
		})
	}
	session := sess.Status().SessionID
	key := lease.KeyOf(l.LeaseId)
	var walk func(rel string)
	walk = func(rel string) {
		full := path.Join(root, rel)
		data, stat, err := c.Get(full)
		if err != nil {
			t.Fatalf("read %s: %v", full, err)
		}
		if rel != "" {
			i := slices.IndexFunc(entries, func(e *layoutEntry) bool { return e.re.MatchString(rel) })
			switch {
			case i >= 0:
				e := entries[i]
				e.seen++
				if eph := stat.EphemeralOwner != 0; eph != e.ephemeral {
					t.Errorf("%s: ephemeral %v, LAYOUT.md says %v (%s)", rel, eph, e.ephemeral, e.path)
				} else if eph && stat.EphemeralOwner != session {
					t.Errorf("%s: ephemeral of session %#x, not the gateway's %#x", rel, stat.EphemeralOwner, session)
				}
				checkLayoutData(t, e, rel, data, key, addr)
			case !implicit(rel):
				t.Errorf("%s is not in LAYOUT.md", rel)
			case len(data) > 0 || stat.EphemeralOwner != 0:
				t.Errorf("directory %s: data %q, ephemeral owner %#x; LAYOUT.md says plain", rel, data, stat.EphemeralOwner)
			}
		}
		kids, _, err := c.Children(full)
		if err != nil {
			t.Fatalf("list %s: %v", full, err)
		}
		for _, k := range kids {
			walk(path.Join(rel, k))
		}
	}
	walk("")
	for _, e := range entries {
		if e.seen == 0 {
			t.Errorf("LAYOUT.md lists %s, which the live tree lacks", e.path)
		}
	}
	if _, err := pb.NewLeaseServiceClient(cc).Revoke(ctx, &pb.RevokeRequest{LeaseId: l.LeaseId}); err != nil {
		t.Fatal(err)
	}
}

// dirRE matches the directories of a page path p ("groups/<group>").
func dirRE(p string) *regexp.Regexp {
	return regexp.MustCompile(`^` + regexp.MustCompile(`<[^>]+>`).ReplaceAllString(regexp.QuoteMeta(p), `[^/]+`) + `$`)
}

// jsonField matches the field names the page mentions: "name": and name:.
var jsonField = regexp.MustCompile(`"?([a-z_]+)"?:`)

// checkLayoutData checks the data of a znode of entry e: what the page
// says of the kinds whose data is a fact (an id, an address, a number,
// nothing), and for JSON records that every field is one the page names.
func checkLayoutData(t *testing.T, e *layoutEntry, rel string, data []byte, key, addr string) {
	t.Helper()
	want, check := "", true
	switch {
	case strings.HasPrefix(e.text, "{") || strings.HasPrefix(e.text, "candidate: {") || strings.HasPrefix(e.text, "slot: {"):
		var rec map[string]any
		if err := json.Unmarshal(data, &rec); err != nil {
			t.Errorf("%s: %q is not a JSON record: %v", rel, data, err)
			return
		}
		named := map[string]bool{}
		for _, m := range jsonField.FindAllStringSubmatch(e.text, -1) {
			named[m[1]] = true
		}
		for f := range rec {
			if !named[f] {
				t.Errorf("%s: field %q, which LAYOUT.md does not name (%s)", rel, f, e.text)
			}
		}
		if e.path == "leases/<key>" && rec["owner"] != "r1" {
			t.Errorf("%s: owner %v, want the replica id r1", rel, rec["owner"])
		}
		check = false
	case e.path == "leases/<key>/owner":
		want = "r1" // the replica id, not a session id
	case e.path == "replicas/<id>":
		want = addr
	case e.path == "barriers/<barrier>":
		want = "1"
	case e.path == "barriers/<barrier>/p-<participant>":
		want = key
	case e.path == "semaphores/<semaphore>":
		want = "2"
	case strings.Contains(e.text, "no data"):
	default:
		check = false
	}
	says := map[string]string{ // what the page must say of the facts checked
		"leases/<key>/owner":                 "the replica id",
		"replicas/<id>":                      "advertise address",
		"barriers/<barrier>":                 "threshold",
		"barriers/<barrier>/p-<participant>": "the owning lease's key",
		"semaphores/<semaphore>":             "permits (N)",
	}
	if s, ok := says[e.path]; ok && !strings.Contains(e.text, s) {
		t.Errorf("LAYOUT.md on %s: %q, which does not say %q", e.path, e.text, s)
	}
	if check && string(data) != want {
		t.Errorf("%s: data %q, want %q (LAYOUT.md: %s)", rel, data, want, e.text)
	}
}

// TestHarnessLayoutMatches: the tests' zktest.Layout names each znode as
// the recipe that owns it does (it mirrors lease, registry, election,
// barrier, lock and semaphore's Layouts, which it cannot import).
func TestHarnessLayoutMatches(t *testing.T) {
	const root = "/r"
	h := zktest.Layout{Root: root}
	ls, rg, el, br := lease.Layout{Root: root}, registry.Layout{Root: root}, election.Layout{Root: root}, barrier.Layout{Root: root}
	lk := lock.Layout{Root: root}
	sm := semaphore.Layout{Root: root}
	for _, c := range []struct{ harness, recipe string }{
		{h.Leases(), ls.Leases()}, {h.Lease("k"), ls.Lease("k")}, {h.LeaseOwner("k"), ls.Owner("k")},
		{h.LeaseRef("k", "member~g~m"), ls.Ref("k", "member~g~m")}, {h.Replicas(), ls.Replicas()}, {h.Replica("r1"), ls.Replica("r1")},
		{h.Groups(), rg.Groups()}, {h.Group("g"), rg.Group("g")}, {h.Members("g"), rg.Members("g")},
		{h.Member("g", "m"), rg.Member("g", "m")}, {h.Log("g"), rg.Log("g")}, {h.ReadBarrier(), rg.ReadBarrier()},
		{h.Election("e"), el.Election("e")}, {h.Barrier("b"), br.Barrier("b")}, {h.Participant("b", "p"), br.Participant("b", "p")},
		{h.Ready("b"), br.Ready("b")}, {h.Elections(), el.Elections()}, {h.Locks(), lk.Locks()}, {h.Lock("l"), lk.Lock("l")},
		{h.Semaphore("s"), sm.Semaphore("s")},
	} {
		if c.harness != c.recipe {
			t.Errorf("zktest.Layout names %s, the recipe %s", c.harness, c.recipe)
		}
	}
}
