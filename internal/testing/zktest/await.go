package zktest

import (
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkcoord/zkcoord/internal/zkx"
)

// AwaitGone reports when the znode at p is deleted, as a watch on it tells
// (on sess, which must outlive the wait): a zero time if it is not gone 2
// minutes on. p must exist when AwaitGone is called.
func AwaitGone(tb testing.TB, sess *zkx.Session, p string) <-chan time.Time {
	tb.Helper()
	ok, _, ch, err := sess.Conn().ExistsW(p)
	if err != nil || !ok {
		tb.Fatalf("zktest: watch %s: exists %v, %v", p, ok, err)
	}
	out := make(chan time.Time, 1)
	go func() {
		giveUp := time.After(2 * time.Minute)
		for {
			select {
			case <-giveUp:
				out <- time.Time{}
				return
			case ev := <-ch:
				if ev.Type == zk.EventNodeDeleted {
					out <- time.Now()
					return
				}
				// Another event (a reconnection): watch again.
				for {
					if ok, _, ch, err = sess.Conn().ExistsW(p); err == nil {
						break
					}
					time.Sleep(10 * time.Millisecond)
				}
				if !ok {
					out <- time.Now()
					return
				}
			}
		}
	}()
	return out
}
