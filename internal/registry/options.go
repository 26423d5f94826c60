package registry

import (
	"fmt"
	"time"
)

// Option configures a Registry. An option refuses a value it cannot work
// with, and New returns that error.
type Option func(*options) error

type options struct {
	idle      time.Duration // evict a group cache unused this long
	ring      int           // events kept per group for resuming watchers
	keepLog   int           // journal entries kept after a trim
	trimAt    int           // trim the journal when it has more entries
	trimCheck int           // writers check the journal's length every trimCheck entries
	pageHold  time.Duration // how long a revision is held, unused, for the next page of a read
	maxHeld   int           // revisions held per group for paged reads

	// afterMemberRead, set by tests (export_test.go), is called after each
	// member read of a (re)load with the group and the number of reads
	// answered so far.
	afterMemberRead func(group string, n int)
	// beforeRefresh, set by tests, is called by a cache's watch loop after
	// its watch fired and before it re-arms and refreshes.
	beforeRefresh func(group string)
	// beforeEntriesRead, set by tests, is called by a catch-up after it
	// listed the journal and before it reads the entries it will apply,
	// with their names.
	beforeEntriesRead func(group string, names []string)
}

func defaultOptions() options {
	return options{idle: 5 * time.Minute, ring: 4096, keepLog: 1000, trimAt: 2000, trimCheck: 500,
		pageHold: time.Minute, maxHeld: 8}
}

// WithIdleEviction sets how long an unused group cache is kept (default
// 5m); it must be positive.
func WithIdleEviction(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("registry: idle eviction %v: must be positive", d)
		}
		o.idle = d
		return nil
	}
}

// WithJournal sets how many journal entries are kept (keep) once the journal
// exceeds trimAt entries (defaults 1000 and 2000). It needs 1 <= keep <
// trimAt: a trim always leaves an entry, by which a cache proves it missed
// nothing.
func WithJournal(keep, trimAt int) Option {
	return func(o *options) error {
		if keep < 1 || trimAt <= keep {
			return fmt.Errorf("registry: journal keeping %d entries, trimmed above %d: want 1 <= keep < trimAt", keep, trimAt)
		}
		o.keepLog, o.trimAt, o.trimCheck = keep, trimAt, max(1, (trimAt-keep)/2)
		return nil
	}
}

// WithHistory sets how many events each group cache keeps so that watchers
// can resume from a revision, and so how far a watcher may fall behind
// before it is ended with ErrSlowWatcher (default 4096); at least 1.
func WithHistory(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("registry: history of %d events: want at least 1", n)
		}
		o.ring = n
		return nil
	}
}

// WithPageHold sets how long a revision of a group is held, unused, for
// the next page of a paged read (default 1m), and how many revisions one
// group holds at most (default 8; the least recently used goes first).
// A held revision costs the tree nodes changed after it. Both positive.
func WithPageHold(d time.Duration, revisions int) Option {
	return func(o *options) error {
		if d <= 0 || revisions < 1 {
			return fmt.Errorf("registry: page hold %v for %d revisions: want both positive", d, revisions)
		}
		o.pageHold, o.maxHeld = d, revisions
		return nil
	}
}
