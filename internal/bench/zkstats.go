package bench

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/zkcoord/zkcoord/internal/zkserver"
)

// What the benchmarks read from ZooKeeper itself: four-letter words,
// its counters (mntr), zxids and watch counts.

// FourLetter runs a ZooKeeper four-letter command on the first server.
func (e *Env) FourLetter(ctx context.Context, cmd string) (string, error) {
	return zkserver.FourLetter(ctx, e.firstZK(), cmd)
}

// firstZK is the address of the first server of e.ZK, the one the
// benchmarks read ZooKeeper's own figures from.
func (e *Env) firstZK() string { return strings.Split(e.ZK, ",")[0] }

// Mntr reads the numeric lines of the server's mntr (zk_global_sessions,
// zk_connection_request_count, ...).
func (e *Env) Mntr(ctx context.Context) (map[string]int64, error) {
	m, err := zkserver.Mntr(ctx, e.firstZK())
	if err != nil {
		return nil, err
	}
	if _, ok := m["zk_connection_request_count"]; !ok {
		return nil, fmt.Errorf("bench: no zk_connection_request_count in mntr (%d counters)", len(m))
	}
	return m, nil
}

// Zxid reads the server's last zxid (srvr): it grows by one per write.
func (e *Env) Zxid(ctx context.Context) (int64, error) {
	out, err := e.FourLetter(ctx, "srvr")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "Zxid: "); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 0, 64)
		}
	}
	return 0, fmt.Errorf("bench: no Zxid in srvr output %q", out)
}

// Quiet waits until the server's zxid has not moved for d (at most 30 s)
// and returns it.
func (e *Env) Quiet(ctx context.Context, d time.Duration) (int64, error) {
	deadline := time.Now().Add(30 * time.Second)
	last, err := e.Zxid(ctx)
	if err != nil {
		return 0, err
	}
	since := time.Now()
	for time.Since(since) < d {
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("bench: ZooKeeper not quiet after 30s (zxid %#x)", last)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		z, err := e.Zxid(ctx)
		if err != nil {
			return 0, err
		}
		if z != last {
			last, since = z, time.Now()
		}
	}
	return last, nil
}

// watches reads wchp: the number of sessions watching each path (data
// watches only; wchp does not list child watches).
func (e *Env) watches(ctx context.Context) (map[string]int, error) {
	out, err := e.FourLetter(ctx, "wchp")
	if err != nil {
		return nil, err
	}
	counts := map[string]int{}
	cur := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "/"):
			cur = line
		case cur != "" && strings.HasPrefix(strings.TrimSpace(line), "0x"):
			counts[cur]++
		}
	}
	return counts, nil
}

// WatchesOn counts, from wchp, the sessions watching path.
func (e *Env) WatchesOn(ctx context.Context, path string) (int, error) {
	counts, err := e.watches(ctx)
	return counts[path], err
}

// WatchesUnder counts, from wchp, the watches on each path below dir.
func (e *Env) WatchesUnder(ctx context.Context, dir string) (map[string]int, error) {
	counts, err := e.watches(ctx)
	for p := range counts {
		if !strings.HasPrefix(p, dir+"/") {
			delete(counts, p)
		}
	}
	return counts, err
}
