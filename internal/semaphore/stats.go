package semaphore

import "github.com/zkcoord/zkcoord/internal/memo"

// Stats are the counts of the AcquireSemaphore calls running here, for monitoring.
type Stats = memo.QueueStats

// Stats returns the counts now.
func (s *Semaphores) Stats() Stats { return s.counters.Stats() }

// counted wraps an Acquire's report to keep the counts; done ends the
// call's share of them. Reports of one call come one at a time.
func (s *Semaphores) counted(report func(Update) error) (counting func(Update) error, done func()) {
	call := s.counters.Call()
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
