package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/zkcoord/zkcoord/internal/etcdserver"
)

// etcdConns is how many etcd clients (each its own gRPC connection) the
// load generator opens: the sweeps spread their workers over the first
// 4, as over the gateway's 4 connections; the watch fan-out spreads its
// watchers over all 16, as zkcoord's spreads its streams.
const etcdConns = 16

// setupEtcd starts a private etcd (or uses o.Etcd) and opens its clients.
func (e *Env) setupEtcd(ctx context.Context, o EnvOptions) error {
	e.Etcd = o.Etcd
	if e.Etcd == "" {
		s, err := etcdserver.Start(ctx, etcdserver.WithLogs(o.Log), etcdserver.WithPprof(true))
		if err != nil {
			return err
		}
		e.etcds, e.Etcd = s, s.URL()
	}
	for range etcdConns {
		c, err := clientv3.New(clientv3.Config{Endpoints: strings.Split(e.Etcd, ","), DialTimeout: 10 * time.Second,
			Context: ctx, Logger: zap.NewNop(), MaxCallRecvMsgSize: 1 << 30})
		if err != nil {
			return fmt.Errorf("bench: etcd client: %w", err)
		}
		e.etcd = append(e.etcd, c)
	}
	// A first request, so that a wrong -etcd fails here and not in a workload.
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := e.etcd[0].Get(cctx, "health-probe"); err != nil {
		return fmt.Errorf("bench: etcd %s: %w", e.Etcd, err)
	}
	return nil
}

// HasEtcd says whether the run drives an etcd beside ZooKeeper.
func (e *Env) HasEtcd() bool { return len(e.etcd) > 0 }

// EtcdClient returns the i-th etcd client, round robin over all of them.
func (e *Env) EtcdClient(i int) *clientv3.Client { return e.etcd[i%len(e.etcd)] }

// EtcdPid is the private etcd's process id, 0 when not started here.
func (e *Env) EtcdPid() int {
	if e.etcds == nil {
		return 0
	}
	return e.etcds.Pid()
}

// EtcdMemory forces a GC in etcd (its pprof heap endpoint, served with
// --enable-pprof) and reads its heap and stacks in use from /metrics, and
// its RSS from /proc (0 when etcd was not started here). An etcd without
// pprof (-etcd) answers an error.
func (e *Env) EtcdMemory(ctx context.Context) (Memory, error) {
	m := Memory{RSS: procRSS(e.EtcdPid())}
	base := strings.Split(e.Etcd, ",")[0]
	if err := httpGet(ctx, base+"/debug/pprof/heap?gc=1", io.Discard); err != nil {
		return m, err
	}
	var b strings.Builder
	if err := httpGet(ctx, base+"/metrics", &b); err != nil {
		return m, err
	}
	for _, line := range strings.Split(b.String(), "\n") {
		name, v, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			continue
		}
		switch name {
		case "go_memstats_heap_inuse_bytes":
			m.HeapInuse = int64(f)
		case "go_memstats_stack_inuse_bytes":
			m.StackInuse = int64(f)
		}
	}
	if m.HeapInuse == 0 {
		return m, fmt.Errorf("bench: etcd %s/metrics has no go_memstats_heap_inuse_bytes", base)
	}
	// RSS after the GC, as the gateway's.
	m.RSS = procRSS(e.EtcdPid())
	return m, nil
}

func (e *Env) closeEtcd() {
	for _, c := range e.etcd {
		c.Close()
	}
	if e.etcds != nil {
		_ = e.etcds.Stop()
	}
}

// procRSS reads VmRSS of pid from /proc/<pid>/status, in bytes.
func procRSS(pid int) int64 {
	if pid == 0 {
		return 0
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
