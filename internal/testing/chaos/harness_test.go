package chaos_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/testing/chaos"
	"github.com/zkcoord/zkcoord/internal/zkserver"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// TestMain fails the package if a test leaves a goroutine behind: every
// proxy, process watcher and gRPC connection ends with its owner.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	sessionTimeout = 4 * time.Second
	root           = "/chaos"
)

// TestFaults runs one cluster (three ZooKeepers, two replicas) through
// each fault the harness injects and checks the gateway's answer to it on
// grpc.health.v1 and with a Register.
func TestFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a ZooKeeper ensemble and two zkcoord processes")
	}
	if err := zkserver.CheckInstalled(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	h := &harness{t: t, ctx: ctx}

	t0 := time.Now()
	bin, err := chaos.Build(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h.timing("build", t0)
	t0 = time.Now()
	c, err := chaos.StartCluster(ctx, chaos.Options{ZooKeepers: 3, Replicas: 2, Bin: bin, Root: root,
		SessionTimeout: sessionTimeout, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	h.c = c
	t.Cleanup(func() {
		if t.Failed() {
			h.dumpLogs()
		}
		c.Stop()
	})
	h.timing("start cluster (3 ZooKeepers, 2 replicas, all SERVING)", t0)
	obs, err := zkx.Dial(ctx, c.ZK().ConnectString(), zkx.WithSessionTimeout(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer obs.Close()
	h.obs = obs.Conn()

	for _, r := range c.Replicas() {
		if !r.Healthy(ctx) {
			t.Fatalf("replica %s not SERVING after start", r.ID)
		}
	}
	for _, step := range []struct {
		name string
		run  func(h *harness)
	}{
		{"kill ZooKeeper leader", killZKLeader},
		{"pause replica past session timeout", pauseReplica},
		{"drain and restart replica", drainReplica},
		{"kill -9 and restart replica", killReplica},
		{"stall replica's ZooKeeper link", stallZK},
	} {
		if !t.Run(step.name, func(t *testing.T) { step.run(&harness{t: t, ctx: ctx, c: c, obs: h.obs}) }) {
			break // later steps assume a healthy cluster
		}
	}
}

// TestSingleZooKeeper: a one-server ensemble, a replica added to a running
// cluster, and the loss of the only server: every replica is NOT_SERVING
// until it is back.
func TestSingleZooKeeper(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ZooKeeper and zkcoord processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	h := &harness{t: t, ctx: ctx}
	t0 := time.Now()
	c, err := chaos.StartCluster(ctx, chaos.Options{ZooKeepers: 1, Replicas: 1, Root: root,
		SessionTimeout: sessionTimeout, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	h.c = c
	t.Cleanup(func() {
		if t.Failed() {
			h.dumpLogs()
		}
		c.Stop()
	})
	h.timing("start cluster (1 ZooKeeper, 1 replica, built here)", t0)
	t0 = time.Now()
	added, err := c.AddReplica(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h.timing("add replica", t0)
	if added.ID != "r1" || len(c.Addrs()) != 2 || c.Replica(1) != added || strings.Count(c.Target(), ",") != 1 {
		t.Fatalf("added %s; cluster %v", added.ID, c.Addrs())
	}
	i, err := c.KillZKLeader(ctx)
	if err != nil || i != 0 {
		t.Fatalf("KillZKLeader = %d, %v", i, err)
	}
	killed := time.Now()
	for _, r := range c.Replicas() {
		if err := r.AwaitNotServing(h.within(sessionTimeout)); err != nil {
			t.Fatal(err)
		}
	}
	h.timing("replicas NOT_SERVING without ZooKeeper", killed)
	if err := c.RestartZK(ctx, 0); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	for n, r := range c.Replicas() {
		h.t.Logf("TIMING replica %s SERVING %v after ZooKeeper's restart", r.ID, h.awaitServing(r, restarted, 2*sessionTimeout))
		h.mustRegister(r, fmt.Sprintf("zk-restart-%d", n), restarted, 2*sessionTimeout)
	}
}

// harness is what a step needs: its test, the cluster and a ZooKeeper
// session of its own (straight to the ensemble, no proxy) to watch it.
type harness struct {
	t   *testing.T
	ctx context.Context
	c   *chaos.Cluster
	obs *zk.Conn
}

// timing logs and returns the time since since.
func (h *harness) timing(what string, since time.Time) time.Duration {
	d := time.Since(since).Round(time.Millisecond)
	h.t.Logf("TIMING %s: %v", what, d)
	return d
}

// within returns a context that ends d from now (and with the test's).
func (h *harness) within(d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(h.ctx, d)
	h.t.Cleanup(cancel)
	return ctx
}

// awaitServing waits until r reports SERVING, at most d after since.
func (h *harness) awaitServing(r *chaos.Replica, since time.Time, d time.Duration) time.Duration {
	h.t.Helper()
	ctx, cancel := context.WithDeadline(h.ctx, since.Add(d))
	defer cancel()
	if err := r.AwaitServing(ctx); err != nil {
		h.t.Fatalf("%v (%v after the fault)", err, time.Since(since).Round(time.Millisecond))
	}
	return time.Since(since).Round(time.Millisecond)
}

// register registers member through r, with a lease of its own.
func (h *harness) register(r *chaos.Replica, member string) error {
	ctx, cancel := context.WithTimeout(h.ctx, 5*time.Second)
	defer cancel()
	_, err := pb.NewRegistryServiceClient(r.Conn()).Register(ctx, &pb.RegisterRequest{
		Group: "chaos", MemberId: member, Value: "v", Ttl: durationpb.New(30 * time.Second)})
	return err
}

// mustRegister registers member through r; a failure is retried until d
// after since, and reported (a replica that says SERVING should not fail).
func (h *harness) mustRegister(r *chaos.Replica, member string, since time.Time, d time.Duration) {
	h.t.Helper()
	first := true
	for {
		err := h.register(r, member)
		if err == nil {
			return
		}
		if first {
			h.t.Logf("FINDING: Register through SERVING replica %s failed %v after the fault: %v",
				r.ID, time.Since(since).Round(time.Millisecond), err)
			first = false
		}
		if time.Since(since) > d {
			h.t.Fatalf("Register through %s still failing %v after the fault: %v", r.ID, d, err)
		}
		select {
		case <-h.ctx.Done():
			h.t.Fatal(h.ctx.Err())
		case <-time.After(100 * time.Millisecond): // retry pace, not ordering
		}
	}
}

// healthEvent is a status seen on a replica's health stream.
type healthEvent struct {
	at      time.Duration // since recording started
	serving bool
}

func (e healthEvent) String() string {
	st := "NOT_SERVING"
	if e.serving {
		st = "SERVING"
	}
	return fmt.Sprintf("%v:%s", e.at.Round(time.Millisecond), st)
}

// recordHealth follows r's health stream (an unreachable replica counts as
// not serving) until the function it returns is called, which returns the
// changes seen.
func (h *harness) recordHealth(r *chaos.Replica) func() []healthEvent {
	ctx, cancel := context.WithCancel(h.ctx)
	start := time.Now()
	var events []healthEvent
	add := func(serving bool) {
		if len(events) == 0 || events[len(events)-1].serving != serving {
			events = append(events, healthEvent{time.Since(start), serving})
		}
	}
	done := make(chan struct{})
	go func() { // ends with cancel
		defer close(done)
		hc := healthpb.NewHealthClient(r.Conn())
		for ctx.Err() == nil {
			stream, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
			for err == nil {
				var m *healthpb.HealthCheckResponse
				if m, err = stream.Recv(); err == nil {
					add(m.Status == healthpb.HealthCheckResponse_SERVING)
				}
			}
			if ctx.Err() == nil {
				add(false)
			}
		}
	}()
	return func() []healthEvent {
		cancel()
		<-done
		return events
	}
}

// announcement is the replica's node in <root>/replicas, whose owner is
// the replica's ZooKeeper session.
func announcement(r *chaos.Replica) string { return path.Join(root, "replicas", r.ID) }

// awaitGone waits until p is deleted (an ephemeral: its session ended).
func (h *harness) awaitGone(p string, d time.Duration) {
	h.t.Helper()
	ctx := h.within(d)
	for {
		ok, _, ch, err := h.obs.ExistsW(p)
		if err == nil && !ok {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			h.t.Fatalf("%s still there after %v (err %v)", p, d, err)
		}
	}
}

// awaitOwned waits until p exists as an ephemeral of session sid (any
// session if sid is -1) and reports whether it did within d.
func (h *harness) awaitOwned(p string, sid int64, d time.Duration) bool {
	ctx := h.within(d)
	for {
		ok, st, ch, err := h.obs.ExistsW(p)
		if err == nil && ok && (st.EphemeralOwner == sid || sid == -1 && st.EphemeralOwner != 0) {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

// session returns r's ZooKeeper session id, from GetStatus.
func (h *harness) session(r *chaos.Replica) int64 {
	h.t.Helper()
	st, err := pb.NewStatusServiceClient(r.Conn()).GetStatus(h.within(5*time.Second), &pb.GetStatusRequest{})
	if err != nil {
		h.t.Fatal(err)
	}
	sid, err := strconv.ParseInt(strings.TrimPrefix(st.SessionId, "0x"), 16, 64)
	if err != nil {
		h.t.Fatalf("session id %q: %v", st.SessionId, err)
	}
	return sid
}

// checkAnnounced reports, as a finding, a replica whose node in replicas/
// does not belong to its current session within d: other replicas cannot
// forward keepalives to it once that node is gone.
func (h *harness) checkAnnounced(r *chaos.Replica, d time.Duration) bool {
	sid := h.session(r)
	if !h.awaitOwned(announcement(r), sid, d) {
		ok, st, _ := h.obs.Exists(announcement(r))
		h.t.Logf("FINDING: %s not owned by %s's session 0x%x within %v (exists %v, owner 0x%x)",
			announcement(r), r.ID, sid, d, ok, st.EphemeralOwner)
		return false
	}
	return true
}

// killZKLeader: the replicas ride out the loss of the ZooKeeper leader
// within a session timeout, and serve a Register.
func killZKLeader(h *harness) {
	i, err := h.c.KillZKLeader(h.ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	killed := time.Now()
	if _, err := h.c.ZK().LeaderIndex(h.within(sessionTimeout)); err != nil {
		h.t.Fatal(err)
	}
	h.timing(fmt.Sprintf("new ZooKeeper leader after killing %d", i), killed)
	for n, r := range h.c.Replicas() {
		h.t.Logf("TIMING replica %s SERVING %v after the leader's death", r.ID, h.awaitServing(r, killed, sessionTimeout))
		h.mustRegister(r, fmt.Sprintf("leader-kill-%d", n), killed, sessionTimeout)
	}
	h.timing("both replicas SERVING and registering after the leader's death", killed)
	t0 := time.Now()
	if err := h.c.RestartZK(h.ctx, i); err != nil {
		h.t.Fatal(err)
	}
	h.timing("restart killed ZooKeeper", t0)
}

// pauseReplica: a replica frozen until ZooKeeper expires its session is
// SERVING again soon after it thaws, on a new session.
func pauseReplica(h *harness) {
	r := h.c.Replica(1)
	before := h.session(r)
	r.Pause()
	paused := time.Now()
	h.awaitGone(announcement(r), 3*sessionTimeout)
	h.timing("paused replica's session expired", paused)
	rec := h.recordHealth(r)
	r.Resume()
	resumed := time.Now()
	// The new session announces the replica again.
	if !h.awaitOwned(announcement(r), -1, 2*sessionTimeout) {
		h.t.Fatalf("%s not re-announced after resume", announcement(r))
	}
	announced := h.timing("paused replica re-announced (new session) after resume", resumed)
	h.t.Logf("TIMING replica SERVING %v after resume", h.awaitServing(r, resumed, 2*sessionTimeout))
	if after := h.session(r); after == before {
		h.t.Fatalf("session 0x%x survived a pause past its timeout", after)
	}
	events := rec()
	h.t.Logf("health of %s after resume: %v", r.ID, events)
	if len(events) > 0 && events[0].serving && events[0].at < announced {
		h.t.Logf("FINDING: thawed replica %s answered SERVING %v after resume, on its expired session "+
			"(new session announced at %v)", r.ID, events[0].at, announced)
	}
	if err := h.register(r, "after-pause"); err != nil {
		h.t.Fatalf("Register after resume: %v", err)
	}
}

// drainReplica: SIGTERM drains a replica to a clean exit; it restarts with
// the same id and address.
func drainReplica(h *harness) {
	r := h.c.Replica(0)
	t0 := time.Now()
	if err := r.Drain(h.within(15 * time.Second)); err != nil {
		h.t.Fatal(err)
	}
	h.timing("drain (SIGTERM to exit 0)", t0)
	if r.Running() || r.Healthy(h.ctx) {
		h.t.Fatal("drained replica still running")
	}
	// A drained replica closes its session: its node goes at once.
	if ok, _, err := h.obs.Exists(announcement(r)); ok || err != nil {
		h.t.Errorf("after drain, %s exists=%v (err %v)", announcement(r), ok, err)
	}
	if !h.c.Replica(1).Healthy(h.ctx) {
		h.t.Fatal("the other replica is not SERVING")
	}
	t0 = time.Now()
	if err := r.Restart(h.ctx); err != nil {
		h.t.Fatal(err)
	}
	h.timing("restart after drain (to SERVING)", t0)
	if err := h.register(r, "after-drain"); err != nil {
		h.t.Fatalf("Register after restart: %v", err)
	}
	h.checkAnnounced(r, sessionTimeout)
}

// killReplica: a replica killed with SIGKILL restarts with the same id and
// address, and serves.
func killReplica(h *harness) {
	r := h.c.Replica(1)
	t0 := time.Now()
	r.Kill()
	h.timing("kill -9", t0)
	if r.Running() {
		h.t.Fatal("killed replica still running")
	}
	t0 = time.Now()
	if err := r.Restart(h.ctx); err != nil {
		h.t.Fatal(err)
	}
	h.timing("restart after kill -9 (to SERVING)", t0)
	if err := h.register(r, "after-kill"); err != nil {
		h.t.Fatalf("Register after restart: %v", err)
	}
	// Its predecessor's session lives on for a session timeout, and with
	// it the predecessor's node in replicas/.
	if !h.checkAnnounced(r, 2*sessionTimeout) {
		// What a client sees: a lease owned by r, kept alive through the
		// other replica, which forwards keepalives to the owner it finds in
		// replicas/.
		lc := pb.NewLeaseServiceClient(r.Conn())
		g, err := lc.Grant(h.within(5*time.Second), &pb.GrantRequest{Ttl: durationpb.New(30 * time.Second)})
		if err != nil {
			h.t.Fatal(err)
		}
		_, err = pb.NewLeaseServiceClient(h.c.Replica(0).Conn()).KeepAlive(h.within(5*time.Second),
			&pb.KeepAliveRequest{LeaseId: g.LeaseId})
		h.t.Logf("FINDING: KeepAlive through r0 of a lease granted on restarted %s: err=%v", r.ID, err)
	}
}

// stallZK: a replica whose ZooKeeper link stalls (no byte moves, nothing
// closes) reports NOT_SERVING within a session timeout while the other
// keeps serving; once the link is restored it is SERVING again.
func stallZK(h *harness) {
	r, other := h.c.Replica(0), h.c.Replica(1)
	before := h.session(r)
	r.StallZK()
	stalled := time.Now()
	ctx, cancel := context.WithDeadline(h.ctx, stalled.Add(sessionTimeout))
	defer cancel()
	if err := r.AwaitNotServing(ctx); err != nil {
		h.t.Fatalf("stalled replica: %v", err)
	}
	h.timing("stalled replica NOT_SERVING", stalled)
	if !other.Healthy(h.ctx) {
		h.t.Fatal("the other replica is not SERVING")
	}
	if err := h.register(other, "during-stall"); err != nil {
		h.t.Fatalf("Register through the other replica during the stall: %v", err)
	}
	// Hold the stall until ZooKeeper has expired the stalled session.
	h.awaitGone(announcement(r), 3*sessionTimeout)
	h.timing("stalled replica's session expired", stalled)
	if r.Healthy(h.within(time.Second)) {
		h.t.Fatal("stalled replica SERVING with its session expired")
	}
	r.RestoreZK()
	restored := time.Now()
	h.t.Logf("TIMING stalled replica SERVING %v after restore", h.awaitServing(r, restored, 3*sessionTimeout))
	if after := h.session(r); after == before {
		h.t.Fatalf("session 0x%x survived a stall past its timeout", after)
	}
	if err := h.register(r, "after-stall"); err != nil {
		h.t.Fatalf("Register after restore: %v", err)
	}
	h.checkAnnounced(r, sessionTimeout)
}

// dumpLogs prints the end of each replica's log, for a failed run.
func (h *harness) dumpLogs() {
	for _, r := range h.c.Replicas() {
		b, err := os.ReadFile(r.LogPath())
		if err != nil {
			h.t.Log(err)
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		h.t.Logf("--- %s: last %d lines of %s\n%s", r.ID, min(80, len(lines)), r.LogPath(),
			strings.Join(lines[max(0, len(lines)-80):], "\n"))
	}
}
