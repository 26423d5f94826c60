package chaosrun

import (
	"github.com/zkcoord/zkcoord/internal/testing/zktest"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkcoord/zkcoord/internal/testing/checker"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// pollEvery bounds the time between two reads of the journal when no
// watch fires; the journal holds at least 1000 entries after a trim, so a
// read every few hundred milliseconds never falls behind it.
const pollEvery = 200 * time.Millisecond

// recorder follows a group's journal (<root>/groups/<g>/log) with a
// ZooKeeper session of its own into a checker.Truth: the ground truth the
// checkers hold the clients' observations against, read independently of
// the gateway's cache code. It reads the journal whenever its children
// change (a watch) and at least every pollEvery, each time after a sync,
// and proves on every read that no entry was trimmed before it was read.
type recorder struct {
	sess  *zkx.Session
	lay   zktest.Layout
	group string
	log   *slog.Logger

	mu    sync.Mutex // guards truth
	truth *checker.Truth

	stop context.CancelFunc
	done chan struct{}
}

// startRecorder dials ZooKeeper at connect and follows group's journal
// until finish or close.
func startRecorder(ctx context.Context, connect string, lay zktest.Layout, group string, log *slog.Logger) (*recorder, error) {
	sess, err := zkx.Dial(ctx, connect)
	if err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(ctx)
	rc := &recorder{sess: sess, lay: lay, group: group, log: log, truth: checker.NewTruth(group), stop: stop, done: make(chan struct{})}
	go rc.run(ctx)
	return rc, nil
}

func (rc *recorder) run(ctx context.Context) {
	defer close(rc.done)
	for ctx.Err() == nil {
		_, changed, err := rc.poll()
		if err != nil {
			rc.log.Info("chaosrun: truth: read journal", "err", err)
			changed = nil
		}
		t := time.NewTimer(pollEvery)
		select {
		case <-ctx.Done():
		case <-changed:
		case <-t.C:
		}
		t.Stop()
	}
}

// close stops following and closes the session.
func (rc *recorder) close() {
	rc.stop()
	<-rc.done
	rc.sess.Close()
}

// poll reads the journal once: a sync, then the listing (with a watch on
// it), then every entry after the last one read. It returns the listing's
// revision (the zxid of the journal's last change) and the watch.
func (rc *recorder) poll() (int64, <-chan zk.Event, error) {
	c := rc.sess.Conn()
	dir := rc.lay.Log(rc.group)
	// The listing after a sync shows every change committed before the
	// sync was sent: the truth is complete as of at.
	at := time.Now()
	if _, err := c.Sync(dir); err != nil && !errors.Is(err, zk.ErrNoNode) {
		return 0, nil, err
	}
	names, stat, changed, err := c.ChildrenW(dir)
	if errors.Is(err, zk.ErrNoNode) { // no write yet: wait for the group
		_, _, changed, err = c.ExistsW(dir)
		return 0, changed, err
	}
	if err != nil {
		return 0, nil, err
	}
	listRev := max(stat.Pzxid, stat.Mzxid)
	byseq := map[int64]string{}
	seqs := make([]int64, 0, len(names))
	for _, n := range names {
		if s, err := strconv.ParseInt(strings.TrimPrefix(n, "e-"), 10, 64); err == nil && strings.HasPrefix(n, "e-") {
			seqs = append(seqs, s)
			byseq[s] = n
		}
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	next, ok := rc.truth.Next(seqs)
	if !ok {
		return listRev, changed, nil
	}
	for _, s := range next {
		data, st, err := c.Get(dir + "/" + byseq[s])
		if errors.Is(err, zk.ErrNoNode) {
			rc.truth.Lose(fmt.Sprintf("entry %d was trimmed between the listing and its read", s))
			break
		}
		if err != nil {
			return 0, nil, err // the next read goes on from the last entry added
		}
		ch, err := decodeEntry(s, data, st)
		if err != nil {
			rc.truth.Lose(err.Error())
			break
		}
		rc.truth.Add(ch)
	}
	rc.truth.Through(listRev, at)
	return listRev, changed, nil
}

// decodeEntry turns a journal entry, {"op":"put","id":..,"rec":{..}} or
// {"op":"del","id":..}, into a change: its revision is the entry's czxid,
// its time the entry's ctime. A put's Lease is the lease's key, as the
// member record holds it.
func decodeEntry(seq int64, data []byte, st *zk.Stat) (checker.Change, error) {
	var e struct {
		Op  string `json:"op"`
		ID  string `json:"id"`
		Rec *struct {
			Value string `json:"value"`
			Lease string `json:"lease"`
		} `json:"rec"`
	}
	if err := json.Unmarshal(data, &e); err != nil {
		return checker.Change{}, fmt.Errorf("entry %d is not JSON: %w", seq, err)
	}
	ch := checker.Change{Seq: seq, Rev: st.Czxid, Time: time.UnixMilli(st.Ctime), Member: e.ID}
	switch {
	case e.Op == "del":
		ch.Del = true
	case e.Op == "put" && e.Rec != nil:
		ch.Value, ch.Lease = e.Rec.Value, e.Rec.Lease
	default:
		return checker.Change{}, fmt.Errorf("entry %d: unknown change %q", seq, data)
	}
	return ch, nil
}

// finish stops following, reads the journal to its end and the members
// directory, and returns the truth and those members. A fence (a write of
// the recorder's own) makes the truth complete up to the zxid it got, so
// that a revision any client saw before is covered; the members are read
// between two listings of the journal that agree, so nothing changed
// meanwhile.
func (rc *recorder) finish(ctx context.Context) (*checker.Truth, map[string]string, error) {
	rc.stop()
	<-rc.done
	for attempt := 0; ; attempt++ {
		at := time.Now()
		fence, err := rc.fence()
		if err != nil {
			return nil, nil, err
		}
		before, _, err := rc.poll()
		if err != nil {
			return nil, nil, err
		}
		members, err := readGroup(rc.sess, rc.lay, rc.group)
		if err != nil {
			return nil, nil, err
		}
		after, _, err := rc.poll()
		if err != nil {
			return nil, nil, err
		}
		if before == after || attempt == 9 {
			rc.mu.Lock()
			defer rc.mu.Unlock()
			rc.truth.Through(fence, at)
			if before != after {
				members = nil
			}
			return rc.truth, members, nil
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return nil, nil, err
		}
	}
}

// fenceNode is the recorder's own znode, outside zkcoord's root.
const fenceNode = "/chaosrun-truth-fence"

// fence writes the fence node and returns the write's zxid: reads on this
// session after it see every change up to it.
func (rc *recorder) fence() (int64, error) {
	c := rc.sess.Conn()
	st, err := c.Set(fenceNode, nil, -1)
	if errors.Is(err, zk.ErrNoNode) {
		if _, err = c.Create(fenceNode, nil, 0, zk.WorldACL(zk.PermAll)); err == nil || errors.Is(err, zk.ErrNodeExists) {
			st, err = c.Set(fenceNode, nil, -1)
		}
	}
	if err != nil {
		return 0, err
	}
	return st.Mzxid, nil
}
