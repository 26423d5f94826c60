// Package election is the leader-election recipe: candidates queue as
// sequential znodes under the election, the lowest sequence leads, and each
// waiting candidate watches only the candidate just ahead of it, so a change
// of leader wakes exactly one waiter (no herd). A term's fencing token is
// the zxid that created its candidate znode, which strictly increases over
// the successive leaders of an election.
//
// Watches: each waiting candidate holds a data watch on the candidate just
// ahead and one on its own znode (to see its lease's end, and to take over
// with no read: see provenFirst), each leader one on its own znode (to learn
// that its term ended), and each observed election one child watch per
// gateway, shared by all its observers, with one data watch on that
// election's leader (to report a new value). ZooKeeper keeps one data watch
// per znode and session, so a candidate znode watched by its own campaign
// and by the one behind it on the same gateway costs one watch and one
// notification. Nothing watches the election's children on behalf of a
// candidate.
//
// Candidates are persistent znodes owned by a lease (see package lease):
// they end with Resign or when their lease ends, never because the
// gateway's ZooKeeper session flapped.
package election

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/memo"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// Errors returned by Elections.
var (
	// ErrNotCandidate: the lease holds no candidacy in the election.
	ErrNotCandidate = errors.New("election: not a candidate of this lease")
	// ErrClosed: the Elections is closed (the gateway is stopping).
	ErrClosed = errors.New("election: closed")
	// ErrConflict: the candidacy kept changing while Campaign entered it
	// (created, ended or rewritten concurrently); try again.
	ErrConflict = errors.New("election: candidacy kept changing, try again")
)

// RefKind is the kind of lease refs that name candidacies.
const RefKind = "candidate"

// LeaderInfo describes a leader's term.
type LeaderInfo struct {
	Election string
	// Candidate is the leader's znode name, c_<lease key>_<sequence>.
	Candidate string
	Value     string
	// Token is the zxid that created the candidacy: the term's fencing token.
	Token        int64
	CampaignedAt time.Time

	mod int64 // the zxid of the candidacy's last change (its value)
}

// revision is the revision of an election whose candidates' listing has
// pzxid and whose leader is l: the last change of either.
func revision(pzxid int64, l *LeaderInfo) int64 {
	if l == nil {
		return pzxid
	}
	return max(pzxid, l.mod)
}

// Elections runs campaigns, resignations and observers of elections.
type Elections struct {
	sess   *zkx.Session
	lay    Layout
	leases *lease.Manager
	log    *slog.Logger

	counters counters      // for Stats
	resigned *memo.Removed // candidate znodes Resign deleted: their campaigns report Resigned
	wakers   memo.Wakers   // running campaigns, by election and lease key
	leading  leading       // candidacies whose campaign here reported them Elected
	led      *memo.Removed // the same, remembered ledMemory after they end, by ledKey: the candidate behind one knows it is first when it is deleted
	feeds    *feeds        // shared leader watches for Observe
	barrier  *zkx.Barrier  // orders sequencer checks after committed writes
	// ctx ends when Elections closes: it bounds the shared watches and
	// ends the campaigns.
	ctx    context.Context
	cancel context.CancelFunc

	beforeDelete func() // set by tests: called by Resign just before its delete
}

// New returns Elections under root, zkcoord's namespace (chroot included),
// and registers the candidate release handler with leases, so a lease that
// ends takes its candidacies with it; or the error of a root or option it
// cannot work with. Close stops its observers and campaigns.
func New(sess *zkx.Session, root string, leases *lease.Manager, log *slog.Logger, opt ...Option) (*Elections, error) {
	if err := zkx.CheckPath(root); err != nil {
		return nil, fmt.Errorf("election: root: %w", err)
	}
	o := defaultOptions()
	for _, fn := range opt {
		if err := fn(&o); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Elections{sess: sess, lay: Layout{Root: root}, leases: leases, log: log,
		resigned: memo.NewRemoved(o.resignMemory), led: memo.NewRemoved(ledMemory), ctx: ctx, cancel: cancel}
	e.feeds = newFeeds(e)
	e.barrier = zkx.NewBarrier(ctx, sess, e.lay.Elections())
	leases.Handle(RefKind, e.releaseOps)
	return e, nil
}

// Close ends every Observe and Campaign running on e with ErrClosed and waits
// for the shared watches to stop. Candidacies stay: their leases own them.
func (e *Elections) Close() {
	e.cancel()
	e.feeds.close()
	e.barrier.Close()
}

// record is a candidate znode's data.
type record struct {
	Value        string    `json:"value"`
	CampaignedAt time.Time `json:"campaigned_at"`
}

// entry is one candidate in a listing of an election.
type entry struct {
	name string
	seq  int64
}

// list returns the election's candidates in queue order (by sequence, not
// by name: names start with the lease key) and the directory's Stat.
func (e *Elections) list(ctx context.Context, election string) ([]entry, *zk.Stat, error) {
	kids, stat, err := e.sess.Children(ctx, e.lay.Election(election))
	if err != nil {
		return nil, nil, err
	}
	out := make([]entry, 0, len(kids))
	for _, k := range kids {
		if seq, ok := seqOf(k); ok {
			out = append(out, entry{name: k, seq: seq})
		}
	}
	slices.SortFunc(out, func(a, b entry) int { return cmp.Compare(a.seq, b.seq) })
	return out, stat, nil
}

// seqOf parses the sequence suffix (the last 10 digits) of a candidate name.
func seqOf(name string) (int64, bool) {
	if len(name) < 13 || !strings.HasPrefix(name, "c_") || name[len(name)-11] != '_' {
		return 0, false
	}
	n, err := strconv.ParseInt(name[len(name)-10:], 10, 64)
	return n, err == nil
}

// ownedBy reports whether candidate name belongs to the lease with key.
func ownedBy(name, key string) bool { return strings.Contains(name, "_"+key+"_") }

// find returns the index of the lease's candidate in cands, or -1.
func find(cands []entry, key string) int {
	return slices.IndexFunc(cands, func(c entry) bool { return ownedBy(c.name, key) })
}

// info reads a candidate znode.
func (e *Elections) info(ctx context.Context, election, name string) (*LeaderInfo, error) {
	data, stat, err := e.sess.Get(ctx, e.lay.Election(election)+"/"+name)
	if err != nil {
		return nil, err
	}
	return decode(election, name, data, stat), nil
}

func decode(election, name string, data []byte, stat *zk.Stat) *LeaderInfo {
	var rec record
	_ = json.Unmarshal(data, &rec) // a corrupt record still leads, with no value
	return &LeaderInfo{Election: election, Candidate: name, Value: rec.Value, Token: stat.Czxid, CampaignedAt: rec.CampaignedAt,
		mod: stat.Mzxid}
}

// Leader reads the current leader of election (nil when it has no
// candidate) and the revision the answer reflects: the last change of the
// election's candidates (its pzxid) or of its leader's value; for an
// election never entered, a revision at which it did not exist (reading it
// creates nothing). When ctx ends first, it returns ctx's error at once.
func (e *Elections) Leader(ctx context.Context, election string) (*LeaderInfo, int64, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		cands, stat, err := e.list(ctx, election)
		if errors.Is(err, zk.ErrNoNode) {
			rev, err := zkx.AbsentRev(ctx, e.sess, e.lay.Election(election))
			if errors.Is(err, zkx.ErrAppeared) {
				continue
			}
			return nil, rev, err
		} else if err != nil {
			return nil, 0, fmt.Errorf("election: list %s: %w", election, err)
		}
		if len(cands) == 0 {
			return nil, stat.Pzxid, nil
		}
		l, err := e.info(ctx, election, cands[0].name)
		if errors.Is(err, zk.ErrNoNode) {
			continue // it left meanwhile: list again
		} else if err != nil {
			return nil, 0, fmt.Errorf("election: read leader of %s: %w", election, err)
		}
		return l, revision(stat.Pzxid, l), nil
	}
}

// Resign withdraws the candidacy that leaseID holds in election, deleting
// its znode: a leader steps down and the next candidate is elected at once,
// and the candidacy's Campaign (on this gateway) ends with Resigned. It
// reports whether the candidacy led (as of the listing just before the
// delete) and a revision at or after the delete (0 when it could not be
// read after the delete). ErrNotCandidate when the lease holds no
// candidacy there.
//
// When ctx ends first, Resign returns ctx's error at once. If the delete
// was sent, its outcome is unknown: it may still take effect, and the
// candidacy's Campaign then reports Resigned; repeating Resign settles it
// (ErrNotCandidate once the candidacy is gone).
func (e *Elections) Resign(ctx context.Context, election, leaseID string) (wasLeader bool, rev int64, err error) {
	key := lease.KeyOf(leaseID)
	if path, ok := e.leading.get(election + "/" + key); ok {
		// This gateway's campaign of the candidacy reported it Elected: it
		// leads until its znode goes, so the listing can be skipped. Gone
		// already: the lease may have a newer candidacy; list.
		wasLeader, rev, err := e.resign(ctx, election, leaseID, path, true)
		if !errors.Is(err, ErrNotCandidate) {
			return wasLeader, rev, err
		}
	}
	cands, _, err := e.list(ctx, election)
	if errors.Is(err, zk.ErrNoNode) {
		return false, 0, fmt.Errorf("%w: %s", ErrNotCandidate, election)
	} else if err != nil {
		return false, 0, fmt.Errorf("election: list %s: %w", election, err)
	}
	i := find(cands, key)
	if i < 0 {
		return false, 0, fmt.Errorf("%w: %s", ErrNotCandidate, election)
	}
	return e.resign(ctx, election, leaseID, e.lay.Election(election)+"/"+cands[i].name, i == 0)
}

// resign deletes the lease's candidate znode at path, which led when
// leader says so.
func (e *Elections) resign(ctx context.Context, election, leaseID, path string, leader bool) (wasLeader bool, rev int64, err error) {
	// Note the resignation before the delete: the campaign may see the
	// znode go before Detach returns.
	e.resigned.Add(path)
	if e.beforeDelete != nil {
		e.beforeDelete()
	}
	_, err = e.leases.Detach(ctx, leaseID, lease.Ref(RefKind, election), &zk.DeleteRequest{Path: path, Version: -1})
	switch {
	case err == nil:
	case zkx.Unknown(err): // the delete may have happened, or yet happen: keep the note
		return false, 0, fmt.Errorf("election: resign %s: %w", election, err)
	case errors.Is(err, zk.ErrNoNode): // gone meanwhile (its lease ended)
		e.resigned.Forget(path)
		return false, 0, fmt.Errorf("%w: %s", ErrNotCandidate, election)
	default:
		e.resigned.Forget(path)
		return false, 0, fmt.Errorf("election: resign %s: %w", election, err)
	}
	e.wakers.Wake(election + "/" + lease.KeyOf(leaseID))
	// A read after our own write sees it: the pzxid is at or after the delete.
	if _, stat, err := e.sess.Exists(ctx, e.lay.Election(election)); err == nil {
		rev = stat.Pzxid
	}
	return leader, rev, nil
}

// releaseOps removes the candidacies of a lease that ends
// (lease.ReleaseFunc; parts are [election]). It wakes their campaigns,
// which watch their own znode to see the delete that follows. A lease has
// one candidacy per election, but should it hold more, the later ones are
// deleted first: a transaction that deleted a candidate before the one
// behind it would notify the one behind of its predecessor's deletion
// before its own, and it would take over with no read (provenFirst).
func (e *Elections) releaseOps(ctx context.Context, leaseKey string, parts []string) ([]any, error) {
	if len(parts) != 1 {
		return nil, nil
	}
	dir := e.lay.Election(parts[0])
	kids, _, err := e.sess.Children(ctx, dir)
	if errors.Is(err, zk.ErrNoNode) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	kids = slices.DeleteFunc(kids, func(k string) bool { return !ownedBy(k, leaseKey) })
	slices.SortFunc(kids, func(a, b string) int { // the latest first
		sa, _ := seqOf(a)
		sb, _ := seqOf(b)
		return cmp.Compare(sb, sa)
	})
	var ops []any
	for _, k := range kids {
		ops = append(ops, &zk.DeleteRequest{Path: dir + "/" + k, Version: -1})
	}
	if len(ops) > 0 {
		e.wakers.Wake(parts[0] + "/" + leaseKey)
	}
	return ops, nil
}
