package registry

import "time"

// Option configures a Registry.
type Option func(*options)

type options struct {
	idle      time.Duration // evict a group cache unused this long
	ring      int           // events kept per group for resuming watchers
	keepLog   int           // journal entries kept after a trim
	trimAt    int           // trim the journal when it has more entries
	trimCheck int           // writers check the journal's length every trimCheck entries
}

func defaultOptions() options {
	return options{idle: 5 * time.Minute, ring: 4096, keepLog: 1000, trimAt: 2000, trimCheck: 500}
}

// WithIdleEviction sets how long an unused group cache is kept (default 5m).
func WithIdleEviction(d time.Duration) Option { return func(o *options) { o.idle = d } }

// WithJournal sets how many journal entries are kept (keep) once the journal
// exceeds trimAt entries (defaults 1000 and 2000).
func WithJournal(keep, trimAt int) Option {
	return func(o *options) { o.keepLog, o.trimAt, o.trimCheck = keep, trimAt, max(1, (trimAt-keep)/2) }
}

// WithHistory sets how many events each group cache keeps so that watchers
// can resume from a revision, and so how far a watcher may fall behind
// before it is ended with ErrSlowWatcher (default 4096).
func WithHistory(n int) Option { return func(o *options) { o.ring = n } }
