package election

import "time"

// Option configures Elections.
type Option func(*options)

type options struct {
	resignMemory time.Duration // how long a resignation is remembered
}

func defaultOptions() options {
	return options{resignMemory: 10 * time.Minute}
}

// WithResignMemory sets how long the gateway remembers that Resign deleted
// a candidacy, so that a Campaign following it reports Resigned rather than
// Lost (default 10m). A Campaign sees the delete within moments unless it is
// cut off from ZooKeeper that long. Values below one second are ignored.
func WithResignMemory(d time.Duration) Option {
	return func(o *options) {
		if d >= time.Second {
			o.resignMemory = d
		}
	}
}
