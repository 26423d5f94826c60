package chaosrun

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/zkcoord/zkcoord/internal/testing/chaos"
)

// Fault is a kind of failure the run injects.
type Fault string

// The faults a run draws from.
const (
	// DrainRestart: SIGTERM a replica (it drains), then start it again.
	DrainRestart Fault = "replica-drain"
	// KillRestart: SIGKILL a replica, then start it again.
	KillRestart Fault = "replica-kill"
	// PauseResume: SIGSTOP a replica past its session timeout, then SIGCONT.
	PauseResume Fault = "replica-pause"
	// ZKLeaderKill: SIGKILL the ZooKeeper leader, then restart it.
	ZKLeaderKill Fault = "zk-leader-kill"
	// CutZK: cut one replica's connections to ZooKeeper, then restore.
	CutZK Fault = "replica-zk-cut"
	// StallZK: freeze one replica's connections to ZooKeeper (bytes held,
	// connections open) past its session timeout, then restore.
	StallZK Fault = "replica-zk-stall"
)

// AllFaults is every fault kind.
var AllFaults = []Fault{DrainRestart, KillRestart, PauseResume, ZKLeaderKill, CutZK, StallZK}

// inject applies one fault to the cluster and undoes it, returning a short
// description, the replica whose ZooKeeper session the fault may have
// cost ("*" for any, "" for none: a drain hands its leases over), and the
// replica a drain moved leases off (drained). Only one replica is ever
// down at a time.
func inject(ctx context.Context, c *chaos.Cluster, f Fault, rng *rand.Rand, sessionTimeout time.Duration) (desc, victim, drained string, err error) {
	i := rng.IntN(len(c.Addrs()))
	r := c.Replica(i)
	desc, err = injectOn(ctx, c, r, i, f, rng, sessionTimeout)
	switch f {
	case DrainRestart:
		drained = r.ID
	case ZKLeaderKill:
		victim = "*"
	default:
		victim = r.ID
	}
	return desc, victim, drained, err
}

func injectOn(ctx context.Context, c *chaos.Cluster, r *chaos.Replica, i int, f Fault, rng *rand.Rand, sessionTimeout time.Duration) (string, error) {
	hold := sessionTimeout + sessionTimeout/2 // past the session timeout
	switch f {
	case DrainRestart:
		if err := r.Drain(ctx); err != nil {
			return "", fmt.Errorf("drain replica %d: %w", i, err)
		}
		return fmt.Sprintf("drained and restarted replica %d", i), r.Restart(ctx)
	case KillRestart:
		r.Kill()
		if err := sleep(ctx, hold); err != nil {
			return "", err
		}
		return fmt.Sprintf("killed and restarted replica %d", i), r.Restart(ctx)
	case PauseResume:
		r.Pause()
		err := sleep(ctx, hold)
		r.Resume()
		return fmt.Sprintf("paused replica %d for %v", i, hold), err
	case ZKLeaderKill:
		z, err := c.KillZKLeader(ctx)
		if err != nil {
			return "", err
		}
		if err := sleep(ctx, sessionTimeout); err != nil {
			return "", err
		}
		return fmt.Sprintf("killed ZooKeeper leader %d and restarted it", z), c.RestartZK(ctx, z)
	case CutZK:
		d := time.Duration(rng.Int64N(int64(2 * sessionTimeout)))
		r.CutZK()
		err := sleep(ctx, d)
		r.RestoreZK()
		return fmt.Sprintf("cut replica %d from ZooKeeper for %v", i, d.Round(time.Millisecond)), err
	case StallZK:
		r.StallZK()
		err := sleep(ctx, hold)
		r.RestoreZK()
		return fmt.Sprintf("stalled replica %d's ZooKeeper link for %v", i, hold), err
	}
	return "", fmt.Errorf("unknown fault %q", f)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
