package checker

import "time"

// Option tunes a checker. Each checker reads only the options it documents.
type Option func(*options)

type options struct {
	slack         time.Duration
	keepAliveGap  time.Duration
	releaseWithin time.Duration
	probeGrace    time.Duration
	failoverGrace time.Duration
	vizPath       string
}

func defaultOptions() options {
	return options{releaseWithin: 5 * time.Second, probeGrace: time.Second}
}

func newOptions(opts []Option) options {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithSlack treats events seen by different clients less than d apart as
// concurrent (CheckLeadership): messages to different clients travel at
// different speeds, so an old leader may hear LOST a little after its
// successor hears ELECTED. Default 0: strict. Negative values count as 0.
func WithSlack(d time.Duration) Option {
	return func(o *options) { o.slack = max(d, 0) }
}

// WithKeepAliveGap sets the longest gap between two successful renewals of
// a lease for it to count as kept alive (CheckLeases). Default: half the
// TTL recorded on the KeepAliveOK events (clients renew every third).
func WithKeepAliveGap(d time.Duration) Option {
	return func(o *options) { o.keepAliveGap = max(d, 0) }
}

// WithReleaseWithin sets how long CheckBarriers allows between N
// participants being present and each of them being released before a
// participant that gave up counts as never released. Default 5s.
func WithReleaseWithin(d time.Duration) Option {
	return func(o *options) { o.releaseWithin = max(d, 0) }
}

// WithVisualization makes CheckLinearizable write porcupine's HTML
// visualization of the partitions that are not linearizable to path.
func WithVisualization(path string) Option {
	return func(o *options) { o.vizPath = path }
}

// WithProbeGrace sets how long after its TTL an abandoned lease's members
// may take to go (CheckExpiry; default 1s): a probe after TTL + grace that
// finds one is a violation.
func WithProbeGrace(d time.Duration) Option {
	return func(o *options) { o.probeGrace = max(d, 0) }
}

// WithFailoverGrace sets the grace CheckExpiry allows instead of the probe
// grace when a fault may have cost the lease's owner its ZooKeeper session
// around the lease's end (default: the probe grace). The owner's peers may
// take over its leases only once that session has expired, so set it to
// the probe grace plus the replicas' session timeout.
func WithFailoverGrace(d time.Duration) Option {
	return func(o *options) { o.failoverGrace = max(d, 0) }
}
