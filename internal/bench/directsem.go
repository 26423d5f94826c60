package bench

import (
	"context"
	"path"
	"slices"
	"strings"

	"github.com/go-zookeeper/zk"

	"github.com/zkcoord/zkcoord/internal/zkx"
)

// The direct counterpart of the semaphore workload: Curator's
// InterProcessSemaphoreV2, minimally, one session per caller. An acquirer
// takes a mutex (<dir>/locks: an ephemeral sequential znode, watching its
// predecessor), creates its lease (an ephemeral sequential znode under
// <dir>/leases), and, still holding the mutex, lists the leases with a
// child watch until at most n are there; then it releases the mutex. A
// release deletes the lease.

var openACL = zk.WorldACL(zk.PermAll)

// directSemAcquire takes one of n permits of the semaphore at dir on c and
// returns the lease znode to delete to release it.
func directSemAcquire(ctx context.Context, c *zk.Conn, dir string, n int) (string, error) {
	lock, err := directLock(ctx, c, path.Join(dir, "locks"))
	if err != nil {
		return "", err
	}
	defer c.Delete(lock, -1)
	me, err := c.Create(path.Join(dir, "leases", "lease-"), nil, zk.FlagEphemeral|zk.FlagSequence, openACL)
	if err != nil {
		return "", err
	}
	for {
		kids, _, ch, err := c.ChildrenW(path.Join(dir, "leases"))
		if err != nil {
			return "", err
		}
		if len(kids) <= n {
			return me, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			_ = c.Delete(me, -1)
			return "", ctx.Err()
		}
	}
}

// directLock takes the mutex at dir: Curator's InterProcessMutex (an
// ephemeral sequential znode; wait for the one just ahead to go).
func directLock(ctx context.Context, c *zk.Conn, dir string) (string, error) {
	me, err := c.Create(path.Join(dir, "lock-"), nil, zk.FlagEphemeral|zk.FlagSequence, openACL)
	if err != nil {
		return "", err
	}
	name := path.Base(me)
	for {
		kids, _, err := c.Children(dir)
		if err != nil {
			return "", err
		}
		slices.SortFunc(kids, func(a, b string) int { return strings.Compare(seq(a), seq(b)) })
		i := slices.Index(kids, name)
		if i == 0 {
			return me, nil
		}
		ok, _, ch, err := c.ExistsW(path.Join(dir, kids[i-1]))
		if err != nil {
			return "", err
		}
		if !ok {
			continue
		}
		select {
		case <-ch:
		case <-ctx.Done():
			_ = c.Delete(me, -1)
			return "", ctx.Err()
		}
	}
}

// directSemSetup creates the semaphore's directories.
func directSemSetup(c *zk.Conn, dir string) error {
	for _, p := range []string{path.Join(dir, "locks"), path.Join(dir, "leases")} {
		if err := zkx.EnsurePath(c, p, openACL); err != nil {
			return err
		}
	}
	return nil
}
