package semaphore

import (
	"sync"
	"time"
)

// notes remembers which slot znodes Release deleted, so that the acquires
// following them report Released, not Lost.
type notes struct {
	memory time.Duration

	mu       sync.Mutex
	released map[string]time.Time
}

func newNotes(memory time.Duration) *notes {
	return &notes{memory: memory, released: map[string]time.Time{}}
}

// release notes that Release is deleting the slot znode at path; notes
// older than the memory are forgotten.
func (n *notes) release(path string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := time.Now()
	for p, at := range n.released {
		if now.Sub(at) > n.memory {
			delete(n.released, p)
		}
	}
	n.released[path] = now
}

func (n *notes) unrelease(path string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.released, path)
}

func (n *notes) wasReleased(path string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.released[path]
	return ok
}
