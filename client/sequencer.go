package client

import (
	"context"
	"fmt"
	"sync"

	zkcoordv1 "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

// Sequencer names a fencing token: a lock's hold (Lock.Sequencer) or an
// election's term (Leadership.Sequencer). A client sends it with each
// request to a protected resource, which checks it (CheckSequencer) or
// fences with it (Fence) before it acts.
type Sequencer struct {
	// Lock or Election: exactly one names what the token was issued for.
	Lock, Election string
	Token          int64
	// Shared is true for a shared (read) hold's token.
	Shared bool
}

// key names what the token is for: lock/<name> or election/<name>.
func (s Sequencer) key() string {
	if s.Lock != "" {
		return "lock/" + s.Lock
	}
	return "election/" + s.Election
}

// CheckSequencer asks the gateway whether seq is still current: the token
// of a holder of the lock, or of the election's leader (Chubby's
// CheckSequencer). The answer is linearizable: every release, handover and
// lease end that completed before the call counts. highest is the highest
// token among the current holders (the leader's), 0 with none.
func (c *Client) CheckSequencer(ctx context.Context, seq Sequencer) (current bool, highest int64, err error) {
	resp, err := c.rpc.lock.CheckSequencer(ctx, &zkcoordv1.CheckSequencerRequest{Lock: seq.Lock, Election: seq.Election,
		FencingToken: seq.Token})
	if err != nil {
		return false, 0, fmt.Errorf("sequencer: check %s: %w", seq.key(), callErr(ctx, err, nil))
	}
	return resp.GetCurrent(), resp.GetHighestToken(), nil
}

// Sequencer returns the term's sequencer, for a resource that checks it.
func (l *Leadership) Sequencer() Sequencer {
	return Sequencer{Election: l.Election(), Token: l.Token()}
}

// Fence is what a protected resource embeds to refuse stale tokens: it
// remembers, per lock and election, the highest token it admitted, and
// refuses a token that an admitted newer holder has made stale. Tokens
// strictly increase over successive holders, so once a newer holder has
// acted, an older one (paused, cut off, past its jeopardy deadline) can no
// longer act through the resource. The zero value is ready; it is safe for
// concurrent use.
//
// A shared (read) token is admitted when no newer exclusive token was:
// readers hold a lock together, in any order. An exclusive token (or an
// election's) is admitted when no newer token of any mode was.
type Fence struct {
	mu   sync.Mutex
	seen map[string]fenceMark
}

type fenceMark struct {
	highest   int64 // of every admitted token
	exclusive int64 // of the admitted exclusive tokens
}

// Admit admits seq, and remembers it, or fails with ErrStaleToken when a
// newer holder's token was admitted before. It asks nobody: a token that
// is the newest the resource has seen passes even if its hold has ended
// since (use Check for that).
func (f *Fence) Admit(seq Sequencer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := seq.key()
	m := f.seen[k]
	floor := m.highest
	if seq.Shared {
		floor = m.exclusive
	}
	if seq.Token < floor {
		return fmt.Errorf("fence: %s token %d: %w (token %d was admitted)", k, seq.Token, ErrStaleToken, floor)
	}
	if f.seen == nil {
		f.seen = map[string]fenceMark{}
	}
	m.highest = max(m.highest, seq.Token)
	if !seq.Shared {
		m.exclusive = max(m.exclusive, seq.Token)
	}
	f.seen[k] = m
	return nil
}

// Check asks the gateway whether seq is current (CheckSequencer) and
// admits it if so: ErrStaleToken when it is not current, or when a newer
// token was admitted. Use it before an action that must not follow the
// end of the hold, at the cost of a call (one quorum write, shared by
// concurrent checks on a gateway).
func (f *Fence) Check(ctx context.Context, c *Client, seq Sequencer) error {
	current, _, err := c.CheckSequencer(ctx, seq)
	if err != nil {
		return err
	}
	if !current {
		return fmt.Errorf("fence: %s token %d: %w (not current)", seq.key(), seq.Token, ErrStaleToken)
	}
	return f.Admit(seq)
}
