package barrier

import "sync/atomic"

// Stats are a Barriers' counts, for monitoring.
type Stats struct {
	// Waiting is the number of Await calls waiting here now.
	Waiting int
}

// Stats returns the counts now.
func (b *Barriers) Stats() Stats { return Stats{Waiting: int(b.waiting.Load())} }

// counted counts an Await until the returned func is called.
func (b *Barriers) counted() func() {
	b.waiting.Add(1)
	return func() { b.waiting.Add(-1) }
}

// waitCount is the type of Barriers.waiting.
type waitCount = atomic.Int64
