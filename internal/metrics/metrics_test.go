package metrics_test

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/zkcoord/zkcoord/internal/metrics"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// TestObserveZK: every request is timed under its op; only connection
// and session failures count as failures, not ZooKeeper's answers.
func TestObserveZK(t *testing.T) {
	m := metrics.New()
	m.ObserveZK(zkx.OpMulti, 3*time.Millisecond, nil)
	m.ObserveZK(zkx.OpGet, time.Millisecond, zk.ErrNoNode)
	m.ObserveZK(zkx.OpGet, 2*time.Second, zk.ErrNoServer)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`zkcoord_zk_request_duration_seconds_count{op="multi"} 1`,
		`zkcoord_zk_request_duration_seconds_count{op="get"} 2`,
		`zkcoord_zk_request_duration_seconds_bucket{op="get",le="2.5"} 2`,
		`zkcoord_zk_request_duration_seconds_bucket{op="get",le="1"} 1`,
		`zkcoord_zk_request_failures_total{op="get"} 1`,
		`zkcoord_zk_request_failures_total{op="multi"} 0`,
		`zkcoord_zk_request_duration_seconds_count{op="get_acl"} 0`, // every op from the start
		"go_goroutines ",
		"process_start_time_seconds ",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestRegistriesApart: two Metrics in one process share nothing.
func TestRegistriesApart(t *testing.T) {
	a, b := metrics.New(), metrics.New()
	a.ObserveZK(zkx.OpCreate, time.Millisecond, zk.ErrConnectionClosed)
	n, err := testutil.GatherAndCount(b.Registry(), "zkcoord_zk_request_failures_total")
	if err != nil || n != len(zkx.Ops) {
		t.Fatalf("b's failures: %d series, %v; want %d", n, err, len(zkx.Ops))
	}
	if err := testutil.GatherAndCompare(b.Registry(), strings.NewReader(`
# HELP zkcoord_zk_request_failures_total ZooKeeper requests that failed for want of a connection or session (not answers such as no node), by op.
# TYPE zkcoord_zk_request_failures_total counter
zkcoord_zk_request_failures_total{op="children"} 0
zkcoord_zk_request_failures_total{op="create"} 0
zkcoord_zk_request_failures_total{op="delete"} 0
zkcoord_zk_request_failures_total{op="ensure_path"} 0
zkcoord_zk_request_failures_total{op="exists"} 0
zkcoord_zk_request_failures_total{op="get"} 0
zkcoord_zk_request_failures_total{op="get_acl"} 0
zkcoord_zk_request_failures_total{op="multi"} 0
zkcoord_zk_request_failures_total{op="set"} 0
`), "zkcoord_zk_request_failures_total"); err != nil {
		t.Error(err)
	}
}

// TestClaim: one claim at a time per Metrics; Watch refuses a Source
// without a replica.
func TestClaim(t *testing.T) {
	m := metrics.New()
	release, err := m.Claim()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Claim(); err == nil {
		t.Fatal("a second claim accepted")
	}
	release()
	if _, err := m.Claim(); err != nil {
		t.Fatalf("claim after release: %v", err)
	}
	if _, err := m.Watch(metrics.Source{}); err == nil {
		t.Fatal("Watch without a replica accepted")
	}
}
