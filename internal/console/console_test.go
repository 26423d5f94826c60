package console_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/console"
	"github.com/zkcoord/zkcoord/internal/testing/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestConsoleLive opens the console on a gateway without auth and checks
// that it follows the API: a member registered through gRPC appears in
// the selected group, through its watch stream, and goes when it is
// deregistered; the selected election's leader and token change when the
// leader resigns.
func TestConsoleLive(t *testing.T) {
	ctx := browser(t)
	base := testenv.HTTP(t)
	cc := testenv.Conn(t)
	reg := pb.NewRegistryServiceClient(cc)
	el := pb.NewElectionServiceClient(cc)
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if _, err := reg.Register(cctx, &pb.RegisterRequest{Group: "live.web", MemberId: "web-0", Value: "10.0.0.10:80",
		Persistent: true, Metadata: map[string]string{"zone": "a", "note": "<b id=injected>bold</b>"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = reg.Deregister(context.Background(), &pb.DeregisterRequest{Group: "live.web", MemberId: "web-0"})
	})
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/console/?refresh=200")); err != nil {
		t.Fatal(err)
	}
	wait(t, ctx, "#mode.open")
	if got := text(t, ctx, "#mode"); !strings.Contains(got, "no auth configured") {
		t.Errorf("mode badge %q does not say the console is open", got)
	}
	waitJS(t, ctx, "ZooKeeper connected", `(document.querySelector("#zk-state td")||{}).textContent === "CONNECTED"`)
	wait(t, ctx, `#groups-body tr[data-group="live.web"]`)
	click(t, ctx, `#groups-body tr[data-group="live.web"]`)
	wait(t, ctx, `#members tr[data-member="web-0"]`)
	// Values from the API are text: the markup in web-0's metadata is shown, not parsed.
	if n := count(t, ctx, "#injected"); n != 0 {
		t.Errorf("the member's metadata became markup")
	}
	if got := text(t, ctx, `#members tr[data-member="web-0"]`); !strings.Contains(got, "<b id=injected>bold</b>") {
		t.Errorf("member row %q does not show the metadata as text", got)
	}
	waitJS(t, ctx, "the watch stream is live", `document.querySelector("#group-stream").textContent === "live"`)

	joined, err := reg.Register(cctx, &pb.RegisterRequest{Group: "live.web", MemberId: "web-1", Value: "10.0.0.11:80",
		Ttl: durationpb.New(30 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	wait(t, ctx, `#members tr[data-member="web-1"]`)
	waitJS(t, ctx, "the page shows the join's revision",
		fmt.Sprintf(`document.querySelector("#group-rev").textContent === "%d"`, joined.GetRevision()))
	screenshot(t, ctx, "groups")
	left, err := reg.Deregister(cctx, &pb.DeregisterRequest{Group: "live.web", MemberId: "web-1", LeaseId: joined.GetLeaseId()})
	if err != nil {
		t.Fatal(err)
	}
	gone(t, ctx, `#members tr[data-member="web-1"]`)
	if got := text(t, ctx, "#group-rev"); got != fmt.Sprint(left.GetRevision()) {
		t.Errorf("revision after the leave: page %s, API %d", got, left.GetRevision())
	}
	if got := text(t, ctx, "#group-events li"); !strings.Contains(got, "web-1 left") {
		t.Errorf("latest event %q, want web-1 left", got)
	}

	// Two candidates: the first leads; when it resigns the second does,
	// with a higher fencing token.
	first := campaign(t, el, "live.jobs", "host-a")
	second := campaign(t, el, "live.jobs", "host-b")
	wait(t, ctx, `#elections-body tr[data-election="live.jobs"]`)
	click(t, ctx, `#elections-body tr[data-election="live.jobs"]`)
	waitJS(t, ctx, "the first candidate leads on the page",
		fmt.Sprintf(`document.querySelector("#leader-token").textContent === "%d"`, first.elected.GetFencingToken()))
	if got := text(t, ctx, "#leader-value"); got != "host-a" {
		t.Errorf("leader value %q, want host-a", got)
	}
	waitJS(t, ctx, "the list counts two candidates",
		`(document.querySelector('#elections-body tr[data-election="live.jobs"] td:nth-child(4)')||{}).textContent === "2"`)
	screenshot(t, ctx, "elections")
	if _, err := el.Resign(cctx, &pb.ResignRequest{Election: "live.jobs", LeaseId: first.elected.GetLeaseId()}); err != nil {
		t.Fatal(err)
	}
	next := second.wait(t)
	if next.GetFencingToken() <= first.elected.GetFencingToken() {
		t.Fatalf("second leader's token %d not above %d", next.GetFencingToken(), first.elected.GetFencingToken())
	}
	waitJS(t, ctx, "the second candidate leads on the page",
		fmt.Sprintf(`document.querySelector("#leader-token").textContent === "%d"`, next.GetFencingToken()))
	if got := text(t, ctx, "#leader-value"); got != "host-b" {
		t.Errorf("leader value %q after the resignation, want host-b", got)
	}
	waitJS(t, ctx, "the list shows the new leader's token",
		fmt.Sprintf(`(document.querySelector('#elections-body tr[data-election="live.jobs"] td:nth-child(3)')||{}).textContent === "%d"`, next.GetFencingToken()))

	// A barrier, a lock and a semaphore, each shown in its section.
	ttl := durationpb.New(30 * time.Second)
	if _, err := pb.NewBarrierServiceClient(cc).JoinBarrier(cctx, &pb.JoinBarrierRequest{Barrier: "live.deploy", ParticipantId: "p1", Threshold: 3, Ttl: ttl}); err != nil {
		t.Fatal(err)
	}
	lk, err := pb.NewLockServiceClient(cc).TryAcquireLock(cctx, &pb.TryAcquireLockRequest{Lock: "live.db", Ttl: ttl})
	if err != nil || !lk.GetAcquired() {
		t.Fatalf("TryAcquireLock: %v %v", lk, err)
	}
	sem, err := pb.NewSemaphoreServiceClient(cc).TryAcquireSemaphore(cctx, &pb.TryAcquireSemaphoreRequest{Semaphore: "live.slots", Permits: 2, Value: "worker-1", Ttl: ttl})
	if err != nil || !sem.GetAcquired() {
		t.Fatalf("TryAcquireSemaphore: %v %v", sem, err)
	}
	waitJS(t, ctx, "the barrier's arrivals", `document.querySelector("#barriers-body").textContent.includes("live.deploy1 / 3waiting")`)
	waitJS(t, ctx, "the lock's holder and token", fmt.Sprintf(`document.querySelector("#locks-body").textContent.includes("#%d ×1")`, lk.GetFencingToken()))
	waitJS(t, ctx, "the semaphore's holder", fmt.Sprintf(`document.querySelector("#semaphores-body").textContent.includes("#%d worker-1")`, sem.GetToken()))
	screenshot(t, ctx, "overview")
}

// candidate is a campaign in progress; its stream ends at cleanup.
type candidate struct {
	stream  pb.ElectionService_CampaignClient
	elected *pb.CampaignResponse // set once elected
}

// campaign starts a candidacy and, if it is elected at once, records it.
func campaign(t *testing.T, el pb.ElectionServiceClient, election, value string) *candidate {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st, err := el.Campaign(ctx, &pb.CampaignRequest{Election: election, Value: value})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	c := &candidate{stream: st}
	if resp.GetStatus() == pb.CampaignResponse_STATUS_ELECTED {
		c.elected = resp
	}
	return c
}

// wait receives until the candidate is elected.
func (c *candidate) wait(t *testing.T) *pb.CampaignResponse {
	t.Helper()
	for c.elected == nil {
		resp, err := c.stream.Recv()
		if err != nil {
			t.Fatalf("campaign: %v", err)
		}
		if resp.GetStatus() == pb.CampaignResponse_STATUS_ELECTED {
			c.elected = resp
		}
	}
	return c.elected
}

// TestConsoleHeaders checks the console's files: served under /console/,
// with a Content-Security-Policy that allows scripts from the gateway's
// origin only (no inline script), and no inline script in the page.
func TestConsoleHeaders(t *testing.T) {
	base := testenv.HTTP(t)
	for path, ctype := range map[string]string{"/console/": "text/html", "/console/console.js": "text/javascript", "/console/console.css": "text/css"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), ctype) {
			t.Errorf("GET %s: %d %s, want 200 %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), ctype)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if csp != console.CSP || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("GET %s: CSP %q", path, csp)
		}
		if path == "/console/" && strings.Count(string(body), "<script") != strings.Count(string(body), `<script src="console.js"`) {
			t.Errorf("the page has an inline script")
		}
	}
	resp, err := http.Post(base+"/console/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /console/: %d, want 405", resp.StatusCode)
	}
	// No CORS: another origin's page cannot read the API with a visitor's browser.
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/groups", nil)
	req.Header.Set("Origin", "https://elsewhere.example")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if h := resp.Header.Get("Access-Control-Allow-Origin"); h != "" {
		t.Errorf("GET /v1/groups from another origin: Access-Control-Allow-Origin %q", h)
	}
	// The API's own path checks still apply around the console.
	resp, err = http.Get(base + "/v1/../console/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("GET /v1/../console/: %d, want 400", resp.StatusCode)
	}
}
