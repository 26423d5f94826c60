package zkx

import (
	"context"
	"errors"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"
)

// Transient reports whether err means ZooKeeper could not be reached or the
// session changed under the call: the outcome of a write is unknown and a
// read can be retried.
func Transient(err error) bool {
	return errors.Is(err, zk.ErrNoServer) || errors.Is(err, zk.ErrConnectionClosed) ||
		errors.Is(err, zk.ErrSessionExpired) || errors.Is(err, zk.ErrSessionMoved) ||
		errors.Is(err, zk.ErrClosing)
}

// EnsurePath creates p and its missing parents as empty persistent znodes.
func EnsurePath(c *zk.Conn, p string, acl []zk.ACL) error {
	if ok, _, err := c.Exists(p); err != nil || ok {
		return err
	}
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	cur := ""
	for _, part := range parts {
		cur += "/" + part
		if _, err := c.Create(cur, nil, 0, acl); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return err
		}
	}
	return nil
}

// Backoff paces the retries of ZooKeeper calls that failed transiently:
// 10 ms, doubling to 1 s. Every retry loop of zkcoord waits with one (a
// zero Backoff is ready to use); Reset it after a success.
type Backoff struct {
	delay time.Duration
}

// Wait sleeps the next delay of the schedule. It returns false, at once,
// when ctx is done.
func (b *Backoff) Wait(ctx context.Context) bool {
	switch {
	case b.delay == 0:
		b.delay = 10 * time.Millisecond
	case b.delay < time.Second:
		b.delay = min(2*b.delay, time.Second)
	}
	t := time.NewTimer(b.delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Reset starts the schedule over.
func (b *Backoff) Reset() { b.delay = 0 }

// Retry calls fn until it returns nil or a non-transient error, waiting
// between attempts with a Backoff. Cancelling ctx ends the retries and
// returns ctx's error.
func Retry(ctx context.Context, fn func() error) error {
	var b Backoff
	for {
		err := fn()
		if err == nil || !Transient(err) {
			return err
		}
		if !b.Wait(ctx) {
			return ctx.Err()
		}
	}
}

// Unknown reports whether err leaves the outcome of a write unknown: the
// call was cut off from ZooKeeper (Transient), or its context ended first
// and the request goes on in the background (see Session.Get). Either way
// the write may yet take effect; a read can be retried.
func Unknown(err error) bool {
	return Transient(err) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// ErrAppeared: the znode whose absence AbsentRev proves was created while
// it read; read again.
var ErrAppeared = errors.New("zkx: znode created while its absence was read")

// AbsentRev returns a revision at which p did not exist: the pzxid of its
// nearest existing ancestor, from a listing that lacks the next name on
// the way down to p. The pzxid is the revision of the last change to that
// list of children, so the name was missing at that revision too. It fails
// with ErrAppeared when the listing has the name (p, or an ancestor, was
// created meanwhile).
func AbsentRev(ctx context.Context, c *Session, p string) (int64, error) {
	for child := p; child != "/"; child = path.Dir(child) {
		names, st, err := c.Children(ctx, path.Dir(child))
		if errors.Is(err, zk.ErrNoNode) {
			continue
		} else if err != nil {
			return 0, err
		}
		if slices.Contains(names, path.Base(child)) {
			return 0, ErrAppeared
		}
		return st.Pzxid, nil
	}
	return 0, ErrAppeared
}
