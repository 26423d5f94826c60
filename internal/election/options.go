package election

import (
	"fmt"
	"time"
)

// Option configures Elections. An option refuses a value it cannot work
// with, and New returns that error.
type Option func(*options) error

type options struct {
	resignMemory time.Duration // how long a resignation is remembered
}

func defaultOptions() options {
	return options{resignMemory: 10 * time.Minute}
}

// WithResignMemory sets how long the gateway remembers that Resign deleted
// a candidacy, so that a Campaign following it reports Resigned rather than
// Lost (default 10m). A Campaign sees the delete within moments unless it is
// cut off from ZooKeeper that long. It must be at least a second.
func WithResignMemory(d time.Duration) Option {
	return func(o *options) error {
		if d < time.Second {
			return fmt.Errorf("election: resign memory %v: want at least 1s", d)
		}
		o.resignMemory = d
		return nil
	}
}
