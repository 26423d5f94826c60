package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

// httpMembers is the size of the group the http workload looks up: small,
// so that the figure is the exchange's cost, not the answer's size.
const httpMembers = 3

// httpFace: the HTTP/JSON face of the gateway process, driven from this
// process as a PHP or shell client drives it (issue 15, item 6): a Lookup
// of a small group, GET /v1/groups/{group} on keep-alive connections,
// beside the gRPC Lookup of the same group, the two interleaved in rounds
// at Callers callers; then the wake-up of long-polls (longPoll).
func (r *Runner) httpFace(ctx context.Context) error {
	const group = "http"
	reg := pb.NewRegistryServiceClient(r.env.Conn())
	for i := range httpMembers {
		if _, err := reg.Register(ctx, &pb.RegisterRequest{Group: group, MemberId: fmt.Sprint("m", i),
			Value: "10.0.0.1:8080", Persistent: true}); err != nil {
			return err
		}
	}
	c := r.cfg.Callers
	hc := newHTTPClient(c)
	defer hc.CloseIdleConnections()
	u := r.env.HTTP + "/v1/groups/" + url.PathEscape(group)
	httpLookup := func(ctx context.Context, w, i int) error {
		n, err := httpLookupMembers(ctx, hc, u)
		if err == nil && n != httpMembers {
			return fmt.Errorf("GET %s: %d members, want %d", u, n, httpMembers)
		}
		return err
	}
	conns := make([]pb.RegistryServiceClient, 16)
	for i := range conns {
		conns[i] = pb.NewRegistryServiceClient(r.env.Conn())
	}
	grpcLookup := func(ctx context.Context, w, i int) error {
		resp, err := conns[w%len(conns)].Lookup(ctx, &pb.LookupRequest{Group: group})
		if err == nil && len(resp.Members) != httpMembers {
			return fmt.Errorf("lookup: %d members, want %d", len(resp.Members), httpMembers)
		}
		return err
	}
	// The gateway process's CPU around each round: its cost per Lookup,
	// whatever this process's clients cost.
	var cpu0 time.Duration
	var httpCPU, grpcCPU time.Duration
	before := func() error {
		cpu0, _ = r.env.CPU()
		return nil
	}
	after := func(sum *time.Duration) func() error {
		return func() error {
			cpu1, _ := r.env.CPU()
			*sum += cpu1 - cpu0
			return nil
		}
	}
	st, err := r.interleave(ctx, c, []system{
		{name: "zkcoord Lookup HTTP/JSON", op: httpLookup, before: before, after: after(&httpCPU)},
		{name: "zkcoord Lookup gRPC", op: grpcLookup, before: before, after: after(&grpcCPU)},
	})
	if err != nil {
		return err
	}
	// Every Lookup of the rounds, warm-ups included, as the CPU counts them.
	perHTTP, perGRPC := us(httpCPU/time.Duration(st[0].Calls)), us(grpcCPU/time.Duration(st[1].Calls))
	w := fmt.Sprintf("HTTP/JSON Lookup (%d-member group; direct column: gRPC Lookup)", httpMembers)
	calls := fmt.Sprintf(" (%d callers)", c)
	thr := grpcBound(w, "throughput"+calls, "ops/s", st[0].Throughput, st[1].Throughput, Higher, 0.5)
	thr.Note = "GET /v1/groups/{group} on keep-alive connections, each answer read whole and decoded; the direct column is the gateway's own gRPC Lookup of the group, in the same rounds"
	cpuF := info(w, "gateway CPU per Lookup"+calls, "µs", perHTTP, perGRPC, Lower)
	cpuF.Note = "the gateway process's user+system CPU (/proc) over the rounds, warm-ups included, per Lookup: its cost without this process's clients"
	r.add(
		thr,
		info(w, "p50 latency"+calls, "ms", st[0].P50, st[1].P50, Lower),
		info(w, "p99 latency"+calls, "ms", st[0].P99, st[1].P99, Lower),
		cpuF,
	)
	return r.longPoll(ctx)
}

// grpcBound builds a figure of the HTTP/JSON face whose direct column is
// the same call over gRPC, with a target as a ratio to it: at least bound
// (Higher) or at most bound (Lower).
func grpcBound(workload, name, unit string, overHTTP, overGRPC float64, better Better, bound float64) Figure {
	return boundFigure(workload, name, unit, overHTTP, overGRPC, better, bound, "gRPC")
}

// newHTTPClient returns a client that keeps a connection alive for each
// of callers concurrent requests to the gateway (net/http's default keeps
// two per host, and the others would reconnect on every call).
func newHTTPClient(callers int) *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConns: 2 * callers, MaxIdleConnsPerHost: 2 * callers}}
}

// lookupAnswer is what the HTTP clients read of a Lookup's JSON answer.
type lookupAnswer struct {
	Members []struct {
		ID string `json:"id"`
	} `json:"members"`
	Revision string `json:"revision"` // an int64: a string in protojson
}

// httpGetLookup GETs a Lookup at u, reads the answer whole and decodes it.
func httpGetLookup(ctx context.Context, hc *http.Client, u string) (lookupAnswer, error) {
	var a lookupAnswer
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return a, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return a, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return a, err
	}
	if resp.StatusCode != http.StatusOK {
		return a, fmt.Errorf("GET %s: %s: %.200s", u, resp.Status, b)
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return a, fmt.Errorf("GET %s: %w", u, err)
	}
	return a, nil
}

// httpLookupMembers is httpGetLookup's member count.
func httpLookupMembers(ctx context.Context, hc *http.Client, u string) (int, error) {
	a, err := httpGetLookup(ctx, hc, u)
	return len(a.Members), err
}
