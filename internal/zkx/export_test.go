package zkx

// SetBatchHooks has s's group commit call before(calls, ops) on its
// goroutine before it sends each multi (calls: how many callers' transactions
// it carries), and queued(n) after each MultiShared call joins the queue (n: the
// queue's length). Set them before the first MultiShared; queued must not block.
func SetBatchHooks(s *Session, before func(calls int, ops []any), queued func(n int)) {
	s.batch.mu.Lock()
	defer s.batch.mu.Unlock()
	s.batch.beforeSend, s.batch.queued = before, queued
}
