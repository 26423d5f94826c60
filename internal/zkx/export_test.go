package zkx

import "github.com/go-zookeeper/zk"

// SetBatchHooks has s's group commit call before(calls, ops) on its
// goroutine before it sends each multi (calls: how many callers' transactions
// it carries), and queued(n) after each MultiShared call joins the queue (n: the
// queue's length). Set them before the first MultiShared; queued must not block.
func SetBatchHooks(s *Session, before func(calls int, ops []any), queued func(n int)) {
	s.batch.mu.Lock()
	defer s.batch.mu.Unlock()
	s.batch.beforeSend, s.batch.queued = before, queued
}

// SetBatchDepth sets how many batches s's group commit may have in flight
// at once (DefaultWritePipeline by default), and how many queued calls send one
// more while others are in flight (batchEarly by default). Set it before
// the first MultiShared.
func SetBatchDepth(s *Session, depth, early int) {
	s.batch.mu.Lock()
	defer s.batch.mu.Unlock()
	s.batch.depth, s.batch.early = depth, early
}

// WrapBatchSend has s's group commit send each multi through wrap(send)
// once it has its turn (after the batches taken before it have entered
// the connection), so a test can hold answers back. With batches in
// flight together, send runs in the multi's turn, which ends when it is
// written to the connection. Set it before the first MultiShared.
func WrapBatchSend(s *Session, wrap func(send func(ops []any) ([]zk.MultiResponse, error)) func(ops []any) ([]zk.MultiResponse, error)) {
	s.batch.mu.Lock()
	defer s.batch.mu.Unlock()
	s.batch.send = wrap(s.batch.send)
}

// HoldTurn takes the turn of s's multis (order.go) until the returned
// function is called.
func HoldTurn(s *Session) (release func()) {
	s.order.turn <- struct{}{}
	return func() { <-s.order.turn }
}
