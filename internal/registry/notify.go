package registry

import "context"

// WatchNotify is Watch for a caller that follows many watches at once (a
// multiplexed watch stream): instead of a Ready channel, the Sub calls
// notify whenever Take has events or the end of the watch to report. It
// may call notify before WatchNotify returns (an event published in
// between), and more often than there is something to take. notify runs
// with the group's lock held, on the goroutine that publishes the group's
// changes: it must not block, nor call the Sub's methods; it should only
// mark the watch as ready and wake whoever takes from it.
func (r *Registry) WatchNotify(ctx context.Context, name string, startRev int64, notify func()) (*Sub, WatchStart, error) {
	return r.watch(ctx, name, startRev, notify)
}
