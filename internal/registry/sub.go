package registry

import (
	"context"
	"errors"
	"slices"
	"time"
)

// ErrSlowWatcher ends a watcher that did not keep up with its group's
// events; it should resume from its last revision.
var ErrSlowWatcher = errors.New("registry: watcher too slow, resume from last revision")

// ErrWatchClosed is what Take reports after Close.
var ErrWatchClosed = errors.New("registry: watch closed")

// Sub is one watcher of a group. It holds no buffer of its own: it reads
// the group's ring of recent events from its own position, so an idle
// watcher costs a few words, and one that falls a whole ring behind is
// ended with ErrSlowWatcher rather than silently missing events.
type Sub struct {
	g     *group
	ready chan struct{} // capacity 1: signalled when Take has something; nil with notify
	// notify, if set, is called instead of signalling ready (WatchNotify).
	notify func()
	next   int64 // position in the group's event sequence of the next event to take
	ended  bool
	err    error

	pending []*Event // taken by Next, not yet returned
}

// Ready returns a channel that receives when Take has events or the end of
// the watch to report; nil for a Sub made by WatchNotify.
func (s *Sub) Ready() <-chan struct{} { return s.ready }

// Take returns the events since the last Take, in revision order. They end
// with a whole revision: the events of one transaction are published
// together, so a Take never returns part of one (the last event of a
// revision has More unset). Once the watch has ended it returns why:
// ErrSlowWatcher, ErrCacheStopped, ErrClosed, or ErrWatchClosed after Close.
func (s *Sub) Take() ([]*Event, error) {
	g := s.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if s.ended {
		return nil, s.err
	}
	end := g.base + int64(len(g.ring))
	if s.next >= end {
		return nil, nil
	}
	evs := slices.Clone(g.ring[s.next-g.base:])
	s.next = end
	return evs, nil
}

// Next returns the next event, waiting for it until ctx is done; after the
// end of the watch it returns why, as Take does. Use Next or Take, not both.
func (s *Sub) Next(ctx context.Context) (*Event, error) {
	for len(s.pending) == 0 {
		evs, err := s.Take()
		if err != nil {
			return nil, err
		}
		if len(evs) > 0 {
			s.pending = evs
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.ready:
		}
	}
	ev := s.pending[0]
	s.pending = s.pending[1:]
	return ev, nil
}

// Close stops the watcher.
func (s *Sub) Close() {
	s.g.mu.Lock()
	defer s.g.mu.Unlock()
	s.g.dropLocked(s, ErrWatchClosed)
}

func (g *group) dropLocked(s *Sub, err error) {
	if _, ok := g.subs[s]; !ok {
		return
	}
	delete(g.subs, s)
	s.ended, s.err = true, err
	s.signal()
	g.lastUsed = time.Now()
}

func (s *Sub) signal() {
	if s.notify != nil {
		s.notify()
		return
	}
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// publishLocked records the events of one refresh in the ring and wakes
// every watcher and blocking query once. The events of a revision are
// contiguous and all in evs: More is set on each but the last of its
// revision. A watcher that has not taken an event leaving the ring is
// ended with ErrSlowWatcher rather than silently missing it.
func (g *group) publishLocked(evs []*Event) {
	if len(evs) == 0 {
		return
	}
	g.changed = max(g.changed, evs[len(evs)-1].Rev)
	g.wakeLocked()
	for i, ev := range evs {
		ev.More = i+1 < len(evs) && evs[i+1].Rev == ev.Rev
		if len(g.ring) >= g.r.opts.ring {
			g.floor = g.ring[0].Rev
			g.ring[0] = nil
			g.ring = g.ring[1:]
			g.base++
		}
		g.ring = append(g.ring, ev)
	}
	for s := range g.subs {
		if s.next < g.base {
			g.r.counters.slowCuts.Add(1)
			g.dropLocked(s, ErrSlowWatcher)
			continue
		}
		s.signal()
	}
}
