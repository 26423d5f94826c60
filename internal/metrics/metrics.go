// Package metrics is zkcoord's Prometheus metrics: one registry of its own
// per gateway (so that tests can run several gateways in one process), the
// gRPC server metrics of go-grpc-middleware's Prometheus provider (calls by
// method and code, handling time, streams), ZooKeeper request latency (fed
// by zkx's Observer), and a collector that reads a replica's recipes' counts
// at scrape time (replica.go). Every label has a small, fixed set of values:
// nothing is labelled by member, lease, group, election or lock name.
// docs/METRICS.md lists every metric.
package metrics

import (
	"net/http"
	"sync/atomic"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"

	"github.com/zkcoord/zkcoord/internal/zkx"
)

// Namespace prefixes zkcoord's own metrics.
const Namespace = "zkcoord"

// Metrics is one gateway's metrics and the registry that serves them.
type Metrics struct {
	reg   *prometheus.Registry
	grpc  *grpcprom.ServerMetrics
	zkOps *prometheus.HistogramVec
	zkErr *prometheus.CounterVec

	watched atomic.Bool // a replica is watched (Watch)
}

// GRPCBuckets are the bounds of grpc_server_handling_seconds, in seconds:
// from a cached Lookup (well under a millisecond) to a long-poll's wait.
var GRPCBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// ZKBuckets are the bounds of zkcoord_zk_request_duration_seconds.
var ZKBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// New returns metrics on a registry of their own, with the Go runtime's and
// the process's metrics, gRPC server metrics and ZooKeeper request latency.
// Watch adds a replica's.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		grpc: grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
			grpcprom.WithHistogramBuckets(GRPCBuckets))),
		zkOps: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "zk", Name: "request_duration_seconds",
			Help:    "Time ZooKeeper took to answer a request, by kind of request (op).",
			Buckets: ZKBuckets,
		}, []string{"op"}),
		zkErr: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "zk", Name: "request_failures_total",
			Help: "ZooKeeper requests that failed for want of a connection or session (not answers such as no node), by op.",
		}, []string{"op"}),
	}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.grpc, m.zkOps, m.zkErr)
	for _, op := range zkx.Ops { // every op from the first scrape, at zero
		m.zkOps.WithLabelValues(string(op))
		m.zkErr.WithLabelValues(string(op))
	}
	return m
}

// Registry is where the metrics are registered: add a collector of your own,
// or gather them in a test.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in Prometheus's text (or OpenMetrics) format,
// for /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, ErrorHandling: promhttp.ContinueOnError})
}

// UnaryServerInterceptor counts and times unary calls (grpc_server_*).
func (m *Metrics) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return m.grpc.UnaryServerInterceptor()
}

// StreamServerInterceptor counts and times streams (grpc_server_*): a
// stream is started when it opens and handled when it ends.
func (m *Metrics) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return m.grpc.StreamServerInterceptor()
}

// ObserveZK is a zkx.Observer: pass it to zkx.Dial with zkx.WithObserver.
func (m *Metrics) ObserveZK(op zkx.Op, took time.Duration, err error) {
	m.zkOps.WithLabelValues(string(op)).Observe(took.Seconds())
	if err != nil && zkx.Transient(err) {
		m.zkErr.WithLabelValues(string(op)).Inc()
	}
}
