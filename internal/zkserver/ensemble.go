package zkserver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Ensemble is a ZooKeeper ensemble of child processes on loopback, for
// tests that lose a server.
type Ensemble struct {
	Servers []*Server
	dir     string
}

// StartEnsemble starts n ZooKeeper servers as one ensemble (distinct ports
// on 127.0.0.1, a data directory each under one temporary directory) and
// returns once every server serves. Options apply to every server. A member
// that dies while starting (a port taken between choosing and binding it)
// makes it start over with new ports, up to three times.
func StartEnsemble(ctx context.Context, n int, opt ...Option) (*Ensemble, error) {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var e *Ensemble
		if e, err = startEnsemble(ctx, n, opt...); err == nil {
			return e, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, err
}

func startEnsemble(ctx context.Context, n int, opt ...Option) (*Ensemble, error) {
	if err := CheckInstalled(); err != nil {
		return nil, err
	}
	root, err := os.MkdirTemp("", "zkcoord-ensemble-")
	if err != nil {
		return nil, err
	}
	e := &Ensemble{dir: root}
	var members []string
	for i := 0; i < n; i++ {
		var ports [3]int
		for j := range ports {
			if ports[j], err = FreePort(); err != nil {
				return nil, err
			}
		}
		o := defaultOptions()
		for _, fn := range opt {
			fn(&o)
		}
		o.port = ports[0]
		o.dir = filepath.Join(root, fmt.Sprintf("zk%d", i+1))
		e.Servers = append(e.Servers, &Server{opts: o, dir: o.dir, port: ports[0], id: i + 1})
		members = append(members, fmt.Sprintf("127.0.0.1:%d:%d", ports[1], ports[2]))
	}
	for _, s := range e.Servers {
		s.members = members
		if err := s.writeConfig(); err != nil {
			e.Stop()
			return nil, err
		}
		if err := s.spawn(); err != nil {
			e.Stop()
			return nil, err
		}
	}
	for _, s := range e.Servers {
		if err := WaitReady(ctx, s.Addr(), s.proc.Done()); err != nil {
			e.Stop()
			return nil, fmt.Errorf("zkserver: ensemble member %d: %w", s.id, err)
		}
	}
	return e, nil
}

// ConnectString returns "host:port,host:port,..." of every member.
func (e *Ensemble) ConnectString() string {
	addrs := make([]string, len(e.Servers))
	for i, s := range e.Servers {
		addrs[i] = s.Addr()
	}
	return strings.Join(addrs, ",")
}

// Kill stops member i at once (SIGKILL) and waits for it to exit.
func (e *Ensemble) Kill(i int) {
	e.Servers[i].proc.Kill()
}

// Restart starts member i again with its data, and waits until it serves.
func (e *Ensemble) Restart(ctx context.Context, i int) error {
	s := e.Servers[i]
	if s.proc.Running() {
		return errors.New("zkserver: member is running")
	}
	if err := s.spawn(); err != nil {
		return err
	}
	return WaitReady(ctx, s.Addr(), s.proc.Done())
}

// Stop stops every member and removes their data.
func (e *Ensemble) Stop() {
	for _, s := range e.Servers {
		if s.proc != nil {
			_ = s.Stop()
		}
	}
	_ = os.RemoveAll(e.dir)
}
