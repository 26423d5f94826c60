package registry

// The journal's write side: every change of a group is written with an
// entry in <group>/log in the same transaction (journal), and the oldest
// entries are trimmed from the write path (maybeTrim, trimJournal), always
// leaving one, by which a cache proves it missed nothing. refresh.go reads
// it.

import (
	"context"
	"errors"
	"path"
	"slices"
	"strconv"

	"github.com/go-zookeeper/zk"
)

// maybeTrim trims a group's journal from the write path every trimCheck
// entries, so that it stays bounded even when no gateway caches the group.
func (r *Registry) maybeTrim(group, entry string) {
	seq, ok := seqOf(path.Base(entry))
	if !ok {
		return
	}
	last, _ := r.trimmed.LoadOrStore(group, int64(-1))
	if last.(int64) >= 0 && seq-last.(int64) < int64(r.opts.trimCheck) {
		return
	}
	if !r.trimmed.CompareAndSwap(group, last, seq) {
		return // another write is checking
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		names, _, err := r.sess.Children(r.ctx, r.lay.Log(group))
		if err != nil {
			return
		}
		seqs, byseq := parseLog(names)
		r.trimJournal(r.ctx, group, seqs, byseq)
	}()
}

// journal returns op followed by the journal entry and the touch of the log
// directory whose Stat carries the transaction's zxid (index 2).
func (r *Registry) journal(group string, ch change, op any) []any {
	log := r.lay.Log(group)
	return []any{
		op,
		&zk.CreateRequest{Path: log + "/e-", Data: mustJSON(ch), Acl: r.sess.ACL(), Flags: zk.FlagSequence},
		&zk.SetDataRequest{Path: log, Version: -1},
	}
}

// parseLog returns the sorted sequence numbers of journal entry names, and
// the name of each.
func parseLog(names []string) ([]int64, map[int64]string) {
	seqs := make([]int64, 0, len(names))
	byseq := make(map[int64]string, len(names))
	for _, n := range names {
		if s, ok := seqOf(n); ok {
			seqs = append(seqs, s)
			byseq[s] = n
		}
	}
	slices.Sort(seqs)
	return seqs, byseq
}

// trimJournal deletes the oldest journal entries once there are more than
// trimAt, keeping keepLog, until ctx ends.
func (r *Registry) trimJournal(ctx context.Context, group string, seqs []int64, byseq map[int64]string) {
	if len(seqs) <= r.opts.trimAt {
		return
	}
	c := r.sess
	log := r.lay.Log(group)
	old := seqs[:len(seqs)-r.opts.keepLog]
	// Deletes go in batches, one transaction each, so a trim costs a few
	// writes rather than one per entry. A batch that fails (another
	// replica trimmed some of it first) is retried entry by entry.
	for len(old) > 0 {
		n := min(len(old), trimBatch)
		ops := make([]any, n)
		for i, s := range old[:n] {
			ops[i] = &zk.DeleteRequest{Path: log + "/" + byseq[s], Version: -1}
		}
		if _, err := c.Multi(ctx, ops...); err != nil {
			for _, s := range old[:n] {
				if err := c.Delete(ctx, log+"/"+byseq[s], -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
					return
				}
			}
		}
		old = old[n:]
	}
}

// trimBatch is how many journal entries one trim transaction deletes.
const trimBatch = 500

func seqOf(name string) (int64, bool) {
	if len(name) < 3 || name[:2] != "e-" {
		return 0, false
	}
	n, err := strconv.ParseInt(name[2:], 10, 64)
	return n, err == nil
}
