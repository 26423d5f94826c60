package console_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/auth"
	"github.com/zkcoord/zkcoord/internal/testing/testenv"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/server"
)

const policyJSON = `{"principals": [
  {"name": "app-reader", "token": "app-reader-token-0123456789", "scopes": [{"prefix": "app.", "rights": ["read"]}]},
  {"name": "ops", "token": "ops-token-0123456789", "scopes": [{"prefix": "", "rights": ["admin"]}]}
]}`

// TestConsoleAuth serves a gateway with auth on and checks that the
// console gets exactly what the caller's token allows: without a token it
// shows the refusal and no data; with a read token scoped to app. it lists
// app.'s groups only (none of jobs.'s), no leases, no status and no
// actions, and is refused every name; with an admin token it lists
// everything and its Deregister removes a persistent member.
func TestConsoleAuth(t *testing.T) {
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.json")
	if err := os.WriteFile(policy, []byte(policyJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := auth.LoadSource(policy, func(err error) { t.Logf("policy: %v", err) })
	if err != nil {
		t.Fatal(err)
	}
	sess, lay := zktest.Session(t)
	addr, base := testenv.ServeBoth(t, sess, server.WithRoot(lay.Root),
		server.WithAuth(auth.Config{Source: src, Open: []string{auth.HealthService}}))
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(auth.Bearer("ops-token-0123456789", false)))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	reg := pb.NewRegistryServiceClient(cc)
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, m := range []*pb.RegisterRequest{
		{Group: "app.web", MemberId: "a1", Value: "10.0.1.1:80", Persistent: true},
		{Group: "jobs.batch", MemberId: "j1", Value: "10.0.2.1:80", Ttl: durationpb.New(30 * time.Second)},
	} {
		if _, err := reg.Register(cctx, m); err != nil {
			t.Fatal(err)
		}
	}

	ctx := browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/console/?refresh=200")); err != nil {
		t.Fatal(err)
	}
	// No token: the API's refusal, and no data.
	wait(t, ctx, "#refusal")
	if got := text(t, ctx, "#refusal"); !strings.Contains(got, "UNAUTHENTICATED") {
		t.Errorf("refusal %q, want UNAUTHENTICATED", got)
	}
	wait(t, ctx, "#mode.none")
	if n := count(t, ctx, "#groups-body tr"); n != 0 {
		t.Errorf("%d group rows without a token", n)
	}
	screenshot(t, ctx, "refused")

	// A read token scoped to app.: app.'s groups, nothing else.
	signIn(t, ctx, "app.", "app-reader-token-0123456789")
	wait(t, ctx, "#mode.read")
	wait(t, ctx, `#groups-body tr[data-group="app.web"]`)
	if n := count(t, ctx, "#groups-body tr[data-group]"); n != 1 {
		t.Errorf("the app. reader sees %d groups, want 1 (app.web)", n)
	}
	waitJS(t, ctx, "leases refused", `document.querySelector("#leases-body").textContent.includes("PERMISSION_DENIED")`)
	waitJS(t, ctx, "status refused", `document.querySelector("#status-note").textContent.includes("PERMISSION_DENIED")`)
	click(t, ctx, `#groups-body tr[data-group="app.web"]`)
	wait(t, ctx, `#members tr[data-member="a1"]`)
	if n := count(t, ctx, "#members button"); n != 1 {
		t.Fatalf("%d buttons in the member row", n)
	}
	waitJS(t, ctx, "no action for a reader", `getComputedStyle(document.querySelector("#members td.admin-only")).display === "none"`)
	screenshot(t, ctx, "read-only")
	// The token is kept for the session: a reload keeps the reader.
	if err := chromedp.Do(ctx, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	wait(t, ctx, "#mode.read")
	wait(t, ctx, `#groups-body tr[data-group="app.web"]`)
	// Every name is outside the reader's scope: refused.
	signIn(t, ctx, "", "app-reader-token-0123456789")
	waitJS(t, ctx, "the groups list refused", `document.querySelector("#groups-body").textContent.includes("PERMISSION_DENIED")`)
	if n := count(t, ctx, "#groups-body tr[data-group]"); n != 0 {
		t.Errorf("the app. reader sees %d groups over every name", n)
	}

	// An admin: everything, and the action.
	signIn(t, ctx, "", "ops-token-0123456789")
	wait(t, ctx, "#mode.admin")
	wait(t, ctx, `#groups-body tr[data-group="jobs.batch"]`)
	wait(t, ctx, `#groups-body tr[data-group="app.web"]`)
	waitJS(t, ctx, "leases listed", `document.querySelectorAll("#leases-body td.mono").length >= 1`)
	click(t, ctx, `#groups-body tr[data-group="app.web"]`)
	wait(t, ctx, `#members tr[data-member="a1"] button`)
	screenshot(t, ctx, "admin")
	click(t, ctx, `#members tr[data-member="a1"] button`) // arms
	waitJS(t, ctx, "armed", `document.querySelector('#members tr[data-member="a1"] button').textContent === "Confirm deregister"`)
	click(t, ctx, `#members tr[data-member="a1"] button`)
	gone(t, ctx, `#members tr[data-member="a1"]`)
	_, err = reg.Lookup(cctx, &pb.LookupRequest{Group: "app.web", MemberId: "a1"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("Lookup app.web/a1 after the console's Deregister: %v, want NotFound", err)
	}
}

// signIn enters a prefix and a token in the console's form and submits it.
func signIn(t *testing.T, ctx context.Context, prefix, token string) {
	t.Helper()
	// (chromedp.SetValue cannot set an empty value: it checks the result.)
	set := `document.querySelector("#prefix").value = ` + jsString(prefix) + `; document.querySelector("#token").value = ` + jsString(token) + `; true`
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](set)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#sign-in"))); err != nil {
		t.Fatal(err)
	}
}

// count returns how many nodes match sel.
func count(t *testing.T, ctx context.Context, sel string) int {
	t.Helper()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(`+jsString(sel)+`).length`))
	if err != nil {
		t.Fatalf("count %s: %v", sel, err)
	}
	return n
}

func jsString(s string) string { return "'" + strings.ReplaceAll(s, "'", `\'`) + "'" }
