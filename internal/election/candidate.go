package election

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// Status is a candidate's state, as Campaign reports it. The values match
// zkcoord.v1.CampaignResponse.Status.
type Status int

// The states of a candidacy.
const (
	// Queued: waiting; Position says how many candidates are ahead.
	Queued Status = iota + 1
	// Elected: leading; Token identifies the term. Sent again after a
	// Jeopardy when the term went on.
	Elected
	// Jeopardy: the gateway lost ZooKeeper while leading; the term goes on
	// but may end at Deadline.
	Jeopardy
	// Lost: the candidacy ended without a resign (its lease ended, or its
	// znode was removed). Campaign returns after it.
	Lost
	// Resigned: Resign withdrew the candidacy. Campaign returns after it.
	Resigned
)

func (s Status) String() string {
	if s < Queued || s > Resigned {
		return fmt.Sprintf("Status(%d)", int(s))
	}
	return [...]string{"queued", "elected", "jeopardy", "lost", "resigned"}[s-1]
}

// Update is a change of a candidacy's state.
type Update struct {
	Status Status
	// Candidate is the candidacy's znode name, c_<lease key>_<sequence>.
	Candidate string
	// Position, when Queued, is the number of candidates ahead as of the
	// last change of the candidate just ahead (later departures further
	// ahead are seen when that one changes): an upper bound.
	Position int
	// Token is the term's fencing token when Elected or Jeopardy, and when
	// Lost or Resigned if the candidacy led.
	Token int64
	// Deadline, when Jeopardy, is when the term may end.
	Deadline time.Time
	// Leader is the current leader when known (this candidacy when it leads).
	Leader *LeaderInfo
}

// candidate is one candidacy followed by a Campaign.
type candidate struct {
	e        *Elections
	election string
	name     string
	path     string
	key      string      // the owning lease's key
	self     *LeaderInfo // this candidacy as a leader
	armed    selfWatch   // the watch on itself that enterOnce armed, for run
}

// Campaign enters election with value, the candidacy owned by leaseID, and
// reports its state to report: Queued, then Elected; Jeopardy and Elected
// again while the gateway loses and regains ZooKeeper during the term. It
// stays running while the candidacy leads, and returns nil after reporting
// Resigned (Resign withdrew it) or Lost (its lease ended, or its znode was
// removed otherwise). An error from report ends Campaign with that error.
//
// If the lease already holds a candidacy in election, Campaign resumes it
// (same candidate, same place, same token) instead of queueing again; a
// lease has at most one candidacy per election. A new value replaces the
// candidacy's (like etcd's Proclaim): its znode's data is rewritten, fenced
// by its version, and Leader, Observe and the campaigns that follow it
// report the new value.
//
// Cancelling ctx ends Campaign with ctx's error but does not withdraw the
// candidacy: it lasts until Resign or the end of its lease. A caller that
// wants cancelling to withdraw it owns the lease and revokes it (the gRPC
// server does so for a stream's own lease); with a client-supplied lease the
// candidacy stays, and a later Campaign resumes it. If ctx ends while
// Campaign enters the election (ZooKeeper slow), Campaign returns at once
// and whether the candidacy was created is unknown (its write may still
// land): either way it is the lease's, as above. Campaign ends with
// ErrClosed when e is closed.
func (e *Elections) Campaign(ctx context.Context, election, value, leaseID string, report func(Update) error) error {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(e.ctx, cancel)()
	report, done := e.counted(report)
	defer done()
	err := e.campaign(cctx, election, value, leaseID, report)
	if err != nil && ctx.Err() == nil && e.ctx.Err() != nil {
		return ErrClosed
	}
	return err
}

// campaign is Campaign with a ctx that also ends when e closes.
func (e *Elections) campaign(ctx context.Context, election, value, leaseID string, report func(Update) error) error {
	// Listen before entering, so a wake-up about this candidacy is never
	// missed between the two.
	wake, stop := e.wakers.Listen(election + "/" + lease.KeyOf(leaseID))
	defer stop()
	c, err := e.enter(ctx, election, value, leaseID)
	if err != nil {
		return err
	}
	e.log.Debug("election: campaign", "election", election, "candidate", c.name, "token", c.self.Token)
	return c.run(ctx, wake, report)
}

// enter finds the lease's candidacy in election or creates it.
func (e *Elections) enter(ctx context.Context, election, value, leaseID string) (*candidate, error) {
	data, _ := json.Marshal(record{Value: value, CampaignedAt: time.Now().UTC()})
	var backoff zkx.Backoff
	for conflicts := 0; ; {
		c, err := e.enterOnce(ctx, election, leaseID, value, data, conflicts > 0)
		switch {
		case err == nil:
			return c, nil
		case errors.Is(err, ErrConflict) && conflicts < 5:
			conflicts++
		case !zkx.Transient(err): // a context error too: the outcome of a create is unknown then
			return nil, fmt.Errorf("election: campaign %s: %w", election, err)
		}
		if !backoff.Wait(ctx) {
			return nil, ctx.Err()
		}
	}
}

// enterOnce resumes the lease's candidate (with value), or creates it with
// data in one transaction with the lease's ref to it. The ref doubles as a
// lock: a second create for the same lease and election fails with
// ErrNodeExists. dropRef removes a ref that outlived its candidate (found on
// a second conflict).
func (e *Elections) enterOnce(ctx context.Context, election, leaseID, value string, data []byte, dropRef bool) (*candidate, error) {
	dir := e.lay.Election(election)
	ref := lease.Ref(RefKind, election)
	var (
		name string
		err  error
	)
	if owns, known := e.leases.Owns(leaseID, ref); known && !owns && !dropRef {
		// The lease (held here) has no candidacy in the election: create
		// it at once, with no listing first (as a lock's node is). The ref
		// created with it checks that in ZooKeeper; a candidacy created
		// meanwhile, or an election directory not there yet, fails the
		// create, and the listing below finds the one or makes the other.
		if name, err = e.create(ctx, dir, leaseID, ref, data, false); err != nil && !errors.Is(err, ErrConflict) {
			return nil, err
		}
	}
	if name == "" {
		if name, err = e.findOrCreate(ctx, election, leaseID, ref, value, data, dropRef); err != nil {
			return nil, err
		}
	}
	c := &candidate{e: e, election: election, name: name, path: dir + "/" + name, key: lease.KeyOf(leaseID)}
	if c.armed, err = c.readSelf(ctx); errors.Is(err, zk.ErrNoNode) {
		return nil, ErrConflict // ended meanwhile
	} else if err != nil {
		return nil, err
	}
	return c, nil
}

// findOrCreate lists the election (creating its directory when missing)
// and returns the name of the lease's candidate there, its value made
// value, or of the one it creates with data and the lease's ref.
func (e *Elections) findOrCreate(ctx context.Context, election, leaseID, ref, value string, data []byte, dropRef bool) (string, error) {
	dir := e.lay.Election(election)
	cands, _, err := e.list(ctx, election)
	if errors.Is(err, zk.ErrNoNode) { // a new election: create it, then list
		if err := e.sess.EnsurePath(ctx, dir); err != nil {
			return "", err
		}
		cands, _, err = e.list(ctx, election)
	}
	if err != nil {
		return "", err
	}
	if i := find(cands, lease.KeyOf(leaseID)); i >= 0 {
		return cands[i].name, e.proclaim(ctx, election, cands[i].name, leaseID, value)
	}
	return e.create(ctx, dir, leaseID, ref, data, dropRef)
}

// create creates the lease's candidate in dir with data, in one
// transaction with the lease's ref to it (removed first when dropRef), and
// returns its name: ErrConflict when the ref or the candidate's directory
// stood in the way.
func (e *Elections) create(ctx context.Context, dir, leaseID, ref string, data []byte, dropRef bool) (string, error) {
	if dropRef {
		if _, err := e.leases.Detach(ctx, leaseID, ref); err != nil && !errors.Is(err, zk.ErrNoNode) {
			return "", err
		}
	}
	res, err := e.leases.Attach(ctx, leaseID, ref,
		&zk.CreateRequest{Path: dir + "/c_" + lease.KeyOf(leaseID) + "_", Data: data, Acl: e.sess.ACL(), Flags: zk.FlagSequence})
	if errors.Is(err, zk.ErrNodeExists) || errors.Is(err, zk.ErrNoNode) {
		return "", ErrConflict // created concurrently, or the directory went
	} else if err != nil {
		return "", err
	}
	return path.Base(res[0].String), nil
}

// selfWatch is a candidacy's data watch on its own znode, armed by
// readSelf, with the session's Link from before the read that armed it.
type selfWatch struct {
	ch   <-chan zk.Event
	link uint64
}

// readSelf reads the candidacy's znode into c.self (its value may have
// changed) and arms a data watch on it.
func (c *candidate) readSelf(ctx context.Context) (selfWatch, error) {
	link := c.e.sess.Link()
	data, stat, ch, err := c.e.sess.GetW(ctx, c.path)
	if err != nil {
		return selfWatch{}, err
	}
	c.self = decode(c.election, c.name, data, stat)
	return selfWatch{ch: ch, link: link}, nil
}

// provenFirst reports whether the candidacy, which knows it is first if its
// znode is still there (its predecessor's deletion has just come, see
// check), may take over without reading itself: its self watch w was armed
// on the session's connection of now (Link has not moved since before the
// read that armed it), and holds no notification. ZooKeeper sends a
// session's watch notifications on one connection in zxid order, and
// go-zookeeper hands each to its channel in the order it reads them, so a
// deletion of its own znode in an earlier transaction than its
// predecessor's would be in w already. One transaction deleting both
// notifies in the order of its operations, predecessor first: run takes
// over with no read only when the predecessor's deletion was this
// gateway's Resign (Elections.resigned), whose transaction deletes that
// one candidate alone. Any other deletion (a lease's end, whose
// transaction releaseOps orders latest first anyway; an operator's
// deleteall, which batches deletes into one multi in no set order) is
// followed by the read. After a reconnection go-zookeeper re-sets watches
// concurrently with other requests, and the order is lost: Link says so.
// A notification found in w is returned (gone: its own znode's deletion).
func (c *candidate) provenFirst(w selfWatch) (ok, gone bool) {
	if w.ch == nil || w.link != c.e.sess.Link() {
		return false, false
	}
	select {
	case ev := <-w.ch:
		return false, ev.Type == zk.EventNodeDeleted
	default:
		return true, false
	}
}

// proclaim makes value the value of candidate name, if it is not already:
// the znode's data is rewritten in place, fenced by its version and by the
// lease's record, so the candidacy keeps its sequence (its place), its
// creation zxid (its token) and the time it campaigned.
func (e *Elections) proclaim(ctx context.Context, election, name, leaseID, value string) error {
	p := e.lay.Election(election) + "/" + name
	data, stat, err := e.sess.Get(ctx, p)
	if errors.Is(err, zk.ErrNoNode) {
		return ErrConflict // ended meanwhile
	} else if err != nil {
		return err
	}
	var rec record
	if json.Unmarshal(data, &rec) == nil && rec.Value == value {
		return nil
	}
	rec.Value = value
	data, _ = json.Marshal(rec)
	_, err = e.leases.Attach(ctx, leaseID, "", &zk.SetDataRequest{Path: p, Data: data, Version: stat.Version})
	if errors.Is(err, zk.ErrBadVersion) || errors.Is(err, zk.ErrNoNode) {
		return ErrConflict // changed or ended meanwhile
	}
	return err
}

// standing is where a candidacy stands after a listing, with the watch that
// tells when it may have changed.
type standing struct {
	gone   bool
	ahead  int
	leader *LeaderInfo
	watch  <-chan zk.Event // the candidate ahead; this one while leading
	pred   string          // the candidate ahead's path
	predTk int64           // and its token, with which led names it
	self   selfWatch       // this one while queued, when armed by this check
}

// check lists the election and arms the candidacy's watch on the candidate
// just ahead (a data watch: unlike an exists watch, it is not left behind
// when that one is already gone), or on itself when it leads. armSelf also
// arms a watch on itself while queued (run keeps one armed, for its lease's
// end and for provenFirst).
//
// first says the candidacy is known to be first, if it is still there: the
// candidate it watched, just ahead of it, was deleted, and was either the
// only one ahead at its last listing or a leader (led remembers it). No
// candidate can get ahead of it since (sequence numbers only grow), so
// check skips the listing and only arms the watch on itself, which also
// proves it is still there: one read to take over, as the direct recipe's
// one listing (none when provenFirst holds).
func (c *candidate) check(ctx context.Context, armSelf, first bool) (standing, error) {
	conn := c.e.sess
	dir := c.e.lay.Election(c.election)
	gone := standing{gone: true}
	for {
		i, cands := 0, []entry(nil)
		if !first {
			var err error
			cands, _, err = c.e.list(ctx, c.election)
			if errors.Is(err, zk.ErrNoNode) {
				return gone, nil
			} else if err != nil {
				return standing{}, err
			}
			i = slices.IndexFunc(cands, func(x entry) bool { return x.name == c.name })
			if i < 0 {
				return gone, nil
			}
		}
		if i == 0 {
			w, err := c.readSelf(ctx)
			if errors.Is(err, zk.ErrNoNode) {
				return gone, nil
			} else if err != nil {
				return standing{}, err
			}
			return standing{leader: c.self, watch: w.ch}, nil
		}
		data, stat, ch, err := conn.GetW(ctx, dir+"/"+cands[i-1].name)
		if errors.Is(err, zk.ErrNoNode) {
			continue // the one ahead just left
		} else if err != nil {
			return standing{}, err
		}
		s := standing{ahead: i, watch: ch, pred: dir + "/" + cands[i-1].name, predTk: stat.Czxid}
		if i == 1 {
			s.leader = decode(c.election, cands[0].name, data, stat)
		} else if s.leader, err = c.e.info(ctx, c.election, cands[0].name); err != nil && !errors.Is(err, zk.ErrNoNode) {
			return standing{}, err
		}
		if armSelf {
			s.self, err = c.readSelf(ctx)
			if errors.Is(err, zk.ErrNoNode) {
				return gone, nil
			} else if err != nil {
				return standing{}, err
			}
		}
		return s, nil
	}
}

// run follows the candidacy, reporting each change, until it ends.
func (c *candidate) run(ctx context.Context, wake <-chan struct{}, report func(Update) error) error {
	sess := c.e.sess
	st, sessCh := sess.Watch()
	epoch := st.Epoch
	var (
		last    Update
		led     bool
		s       = standing{self: c.armed}
		stale   = true // list again
		first   bool   // the one candidate ahead was deleted: first, if still there
		backoff zkx.Backoff
	)
	leads := c.election + "/" + c.key
	defer c.e.leading.drop(leads, c.path)
	send := func(u Update) error {
		u.Candidate = c.name
		if u.Status == last.Status && u.Position == last.Position && sameLeader(u.Leader, last.Leader) {
			return nil
		}
		if u.Status == Elected {
			c.e.leading.set(leads, c.path)
			c.e.led.Add(ledKey(c.path, c.self.Token))
		}
		last = u
		return report(u)
	}
	for {
		if stale {
			next, err := c.check(ctx, s.self.ch == nil, first)
			switch {
			case ctx.Err() != nil:
				return ctx.Err()
			case err == nil:
				stale, first = false, false
				backoff.Reset()
				if next.ahead > 0 && next.self.ch == nil {
					next.self = s.self // keep the one armed before
				}
				s = next
				if s.gone {
					return report(c.ended(led))
				}
				led = led || s.ahead == 0
				if err := send(c.update(s)); err != nil {
					return err
				}
			case zkx.Transient(err):
				switch sess.Status().State {
				case zkx.StateClosed:
					return fmt.Errorf("election: campaign %s: %w", c.election, zkx.ErrClosed)
				case zkx.StateConnected: // a blip: retry soon
					if !backoff.Wait(ctx) {
						return ctx.Err()
					}
					continue
				}
				// No ZooKeeper: the session's next change says when to retry.
			default:
				return fmt.Errorf("election: campaign %s: %w", c.election, err)
			}
		}
		select {
		case <-ctx.Done(): // Campaign's: it ends when e closes too
			return ctx.Err()
		case ev := <-s.watch: // a change, or the watch was lost with the session
			if ev.Type == zk.EventNodeDeleted && s.ahead == 0 {
				return report(c.ended(led)) // its own znode (it leads): no need to list
			}
			first = first || (ev.Type == zk.EventNodeDeleted && (s.ahead == 1 || c.e.led.Has(ledKey(s.pred, s.predTk))))
			s.watch, stale = nil, true
			if !first {
				break
			}
			switch ok, gone := c.provenFirst(s.self); {
			case gone:
				return report(c.ended(led))
			case ok && c.e.resigned.Has(s.pred): // take over with no read: its self watch becomes the leader's
				s, stale, first, led = standing{leader: c.self, watch: s.self.ch}, false, false, true
				c.e.counters.unread.Add(1)
				if err := send(c.update(s)); err != nil {
					return err
				}
			default:
				s.self = selfWatch{} // the takeover's read arms it again
			}
		case ev := <-s.self.ch:
			if ev.Type == zk.EventNodeDeleted {
				return report(c.ended(led))
			}
			s.self, stale = selfWatch{}, true
		case <-wake: // its lease is ending, or it resigned: its znode's deletion follows
			if s.ahead > 0 && s.self.ch == nil {
				stale = true // no watch on itself to tell: list, and arm one
			}
		case <-sessCh:
			st, sessCh = sess.Watch()
			switch st.State {
			case zkx.StateClosed:
				return fmt.Errorf("election: campaign %s: %w", c.election, zkx.ErrClosed)
			case zkx.StateConnected:
				if st.Epoch != epoch { // a new session: the old one's watches are gone
					epoch, s.watch, s.self, stale = st.Epoch, nil, selfWatch{}, true
				}
				if last.Status == Jeopardy {
					stale = true // still there, still first?
				}
			default:
				if last.Status == Elected {
					err := send(Update{Status: Jeopardy, Token: c.self.Token, Deadline: sess.ExpiryBound(st.Since), Leader: c.self})
					if err != nil {
						return err
					}
				}
			}
		}
	}
}
