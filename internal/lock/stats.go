package lock

import "github.com/zkcoord/zkcoord/internal/memo"

// Stats are the counts of the AcquireLock calls running here, for monitoring.
type Stats = memo.QueueStats

// Stats returns the counts now.
func (l *Locks) Stats() Stats { return l.counters.Stats() }

// counted wraps an Acquire's report to keep the counts; done ends the
// call's share of them. Reports of one call come one at a time.
func (l *Locks) counted(report func(Update) error) (counting func(Update) error, done func()) {
	call := l.counters.Call()
	return func(u Update) error {
		switch u.Status {
		case Queued:
			call.Waiting()
		case Held:
			call.Holding()
		case Jeopardy:
			call.Jeopardy()
		default:
			call.Done()
		}
		return report(u)
	}, call.Done
}
