package checker

import "time"

// Option tunes a checker. Each checker reads only the options it documents.
type Option func(*options)

type options struct {
	slack         time.Duration
	releaseWithin time.Duration
	lateGrace     time.Duration
	failoverGrace time.Duration
	more          bool
	vizPath       string
}

func defaultOptions() options {
	return options{releaseWithin: 5 * time.Second, lateGrace: time.Second}
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

// WithLateGrace sets how long after TTL past its last acknowledged renewal
// a lease whose owning replica lives may take to end (CheckLeaseLifetime;
// default 1s): a member of it still present later is a violation.
func WithLateGrace(d time.Duration) Option {
	return func(o *options) { o.lateGrace = max(d, 0) }
}

// WithFailoverGrace sets the grace CheckLeaseLifetime allows instead of the
// late grace when a fault may have cost the lease's owning replica its
// ZooKeeper session around the lease's end (default: the late grace). The
// owner's peers may take over its leases only once that session has
// expired, so set it to the late grace plus the replicas' session timeout.
func WithFailoverGrace(d time.Duration) Option {
	return func(o *options) { o.failoverGrace = max(d, 0) }
}

// WithMore says that the watchers recorded the more flag of each message
// (CheckWatchDelivery): a revision's messages then end at the one whose
// More is false, and a revision framed otherwise is a violation. Without
// it, consecutive messages of one revision form the revision.
func WithMore() Option {
	return func(o *options) { o.more = true }
}
