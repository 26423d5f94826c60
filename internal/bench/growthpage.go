package bench

import (
	"context"
	"math"
	"time"
)

// snapshotPage is the snapshot_page_size the growth workload's watches ask
// for: the client's (client.WatchGroup's) page.
const snapshotPage = 10000

// firstPageBound is issue 15's target for the first page of a
// 100,000-member group's snapshot.
const firstPageBound = 150

// pagedFigures adds, for one size of the growth workload, the time to a
// paged snapshot's first page (with its target at 100,000 members) and the
// gateway's heap per member.
func (r *Runner) pagedFigures(ctx context.Context, w string, size int, first time.Duration) error {
	f := info(w, "WatchGroup snapshot first page", "ms", ms(first), math.NaN(), Lower)
	if size == 100000 {
		f = absFigure(w, "WatchGroup snapshot first page", "ms", ms(first), math.NaN(), Lower, firstPageBound)
	}
	f.Note = "median of 3 opens with snapshot_page_size 10000 and default gRPC limits, from the call to the first page"
	mem, err := r.env.GatewayMemory(ctx)
	if err != nil {
		return err
	}
	heap := info(w, "gateway heap per member", "B", float64(mem.HeapInuse)/float64(size), math.NaN(), Lower)
	heap.Note = "HeapInuse after a forced GC, over the members of this group: meaningful at the large sizes, where they are most of the heap"
	r.logf("  %d members: snapshot first page %v, gateway heap %d B per member", size, first, mem.HeapInuse/int64(size))
	r.add(f, heap)
	return nil
}
