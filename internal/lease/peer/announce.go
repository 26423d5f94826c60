package peer

import (
	"context"
	"errors"
	"log/slog"

	"github.com/go-zookeeper/zk"

	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// Announce keeps this replica's node (id, data: addr) in <root>/replicas: it creates it on
// each new session, replaces one left by a dead process with the same id
// (an ephemeral of another session), and re-creates it if it goes. It runs
// until ctx is done.
func Announce(ctx context.Context, sess *zkx.Session, lay lease.Layout, id, addr string, log *slog.Logger) {
	node := lay.Replica(id)
	var backoff zkx.Backoff
	for {
		st, changed := sess.Watch()
		var gone <-chan zk.Event
		if st.State == zkx.StateConnected {
			ch, err := announceOnce(ctx, sess, node, addr, st.SessionID)
			if err != nil && !zkx.Unknown(err) {
				log.Warn("announce replica", "err", err)
			}
			gone = ch
			if err != nil {
				if !backoff.Wait(ctx) {
					return
				}
				continue
			}
			backoff.Reset()
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-gone:
		}
	}
}

// announceOnce makes node an ephemeral of this session and returns a watch
// that fires when it changes or goes.
func announceOnce(ctx context.Context, c *zkx.Session, node, addr string, session int64) (<-chan zk.Event, error) {
	for {
		ok, stat, ch, err := c.ExistsW(ctx, node)
		if err != nil {
			return nil, err
		}
		if ok && stat.EphemeralOwner == session {
			return ch, nil
		}
		if ok { // a dead predecessor's node: it goes with its session anyway
			if err := c.Delete(ctx, node, stat.Version); err != nil && !errors.Is(err, zk.ErrNoNode) && !errors.Is(err, zk.ErrBadVersion) {
				return nil, err
			}
		}
		_, err = c.Create(ctx, node, []byte(addr), zk.FlagEphemeral)
		if err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return nil, err
		}
	}
}
