package lock

import (
	"sync"
	"time"
)

// notes is what a gateway remembers about holds between calls: which
// holds Release removed (so that their acquires report Released, not
// Lost), and the wake-up channels of running acquires by lock and lease
// key (known before the acquire's node is).
type notes struct {
	memory time.Duration

	mu       sync.Mutex
	released map[string]time.Time // by node path + "#" + hold
	waiters  map[string]map[chan struct{}]struct{}
}

func newNotes(memory time.Duration) *notes {
	return &notes{memory: memory, released: map[string]time.Time{}, waiters: map[string]map[chan struct{}]struct{}{}}
}

// release notes that Release is removing hold from the node at path;
// notes older than the memory are forgotten.
func (n *notes) release(path, hold string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := time.Now()
	for p, at := range n.released {
		if now.Sub(at) > n.memory {
			delete(n.released, p)
		}
	}
	n.released[path+"#"+hold] = now
}

func (n *notes) unrelease(path, hold string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.released, path+"#"+hold)
}

func (n *notes) wasReleased(path, hold string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.released[path+"#"+hold]
	return ok
}

// listen returns a channel that wake(lock, leaseKey) signals, and its
// cancel.
func (n *notes) listen(lock, leaseKey string) (<-chan struct{}, func()) {
	id := lock + "/" + leaseKey
	ch := make(chan struct{}, 1)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.waiters[id] == nil {
		n.waiters[id] = map[chan struct{}]struct{}{}
	}
	n.waiters[id][ch] = struct{}{}
	return ch, func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		delete(n.waiters[id], ch)
		if len(n.waiters[id]) == 0 {
			delete(n.waiters, id)
		}
	}
}

// wake signals every acquire of the lease in lock; signals coalesce.
func (n *notes) wake(lock, leaseKey string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for ch := range n.waiters[lock+"/"+leaseKey] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
