package metrics

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zkcoord/zkcoord/internal/auth"
	"github.com/zkcoord/zkcoord/internal/gateway"
	"github.com/zkcoord/zkcoord/internal/registry"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// Source is what the replica collector reads at each scrape.
type Source struct {
	Replica *gateway.Replica
	// Version is the zkcoord version, for zkcoord_replica_info.
	Version string
	// Limiter is the auth limiter (nil without auth: no refusals but the
	// lease limit's, which the lease manager counts).
	Limiter *auth.Limiter
	// Polls returns the blocking queries waiting now (nil: none).
	Polls func() int64
}

// replica is a prometheus.Collector of one replica's state: it keeps no
// count of its own, it reads the recipes' (their Stats methods) and the
// session's status when scraped.
type replica struct{ src Source }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(Namespace+"_"+name, help, labels, nil)
}

var (
	dInfo         = desc("replica_info", "Always 1: this replica's id and zkcoord version as labels.", "replica", "version")
	dConnected    = desc("zk_session_connected", "1 while the replica has a ZooKeeper session and reaches a server, else 0.")
	dState        = desc("zk_session_state", "1 for the ZooKeeper session's current state, 0 for the others.", "state")
	dExpirations  = desc("zk_session_expirations_total", "ZooKeeper session expirations the replica has seen.")
	dGCMultis     = desc("zk_group_commit_multis_total", "ZooKeeper multis sent by the group commit of registry writes (several callers' writes in one).")
	dGCCalls      = desc("zk_group_commit_calls_total", "Registry writes answered by the group commit; calls per multi is the mean batch (a write sent again after another's failure counts twice).")
	dGCWait       = desc("zk_group_commit_wait_seconds_total", "Summed over the group commit's answered writes: time queued before their batch was sent (phase=queued), and time that batch was in flight to ZooKeeper (phase=in_flight).", "phase")
	dLeases       = desc("leases", "Leases this replica owns, by state: owned (all of them), handing_off (being handed to another replica).", "state")
	dLeaseGrants  = desc("leases_granted_total", "Leases granted by this replica.")
	dLeaseAdopts  = desc("leases_adopted_total", "Leases this replica took over (owner gone, or kept alive here after a hand-off).")
	dLeaseEnds    = desc("leases_ended_total", "Leases that stopped being this replica's, by reason: expired, revoked, handed_off.", "reason")
	dKeepAlives   = desc("keepalives_total", "Lease keepalives by path: served (renewed here) or forwarded (sent to the owning replica).", "path")
	dGroups       = desc("registry_groups_cached", "Groups this replica caches (one ZooKeeper watch each).")
	dMembers      = desc("registry_members_cached", "Members held in this replica's group caches.")
	dWatchers     = desc("registry_watch_streams", "Watches open on this replica's group caches (WatchGroup streams, AwaitGroup).")
	dResyncs      = desc("registry_resyncs_total", "Watches that resumed from a revision no longer cached and restarted from a snapshot.")
	dJournalLag   = desc("registry_journal_lag_seconds", "Time from a group change's commit in ZooKeeper (its journal entry's ctime) to this replica's cache applying it, for changes the caches followed live (not those read in a snapshot). ZooKeeper's clock against this replica's: skew shifts it.")
	dSlowCuts     = desc("registry_slow_watcher_cuts_total", "Watches ended because they fell a whole event ring behind (the client resumes).")
	dCatchUps     = desc("registry_catchups_total", "LINEARIZABLE reads' catch-ups (one barrier write each, shared by concurrent reads), by journal: skipped (the cache's watch proved it current) or listed.", "journal")
	dCandidates   = desc("election_candidates", "Campaigns running on this replica.")
	dLeaders      = desc("election_leaders", "Campaigns on this replica that lead their election now (in jeopardy included).")
	dTerms        = desc("election_leader_changes_total", "Terms begun by campaigns on this replica: a candidate here became leader.")
	dJeopardy     = desc("jeopardy_notices_total", "JEOPARDY reports sent to leaders (recipe election) and holders (lock, semaphore): this replica lost ZooKeeper during their term or hold.", "recipe")
	dLocks        = desc("lock_acquires", "AcquireLock calls on this replica, by state: waiting (queued) or holding.", "state")
	dTries        = desc("tries_total", "TryAcquireLock and TryAcquireSemaphore calls answered, by recipe (lock, semaphore) and result: acquired (a hold taken or found) or busy. Holds taken by a try are not in the acquires gauges.", "recipe", "result")
	dPermits      = desc("semaphore_acquires", "AcquireSemaphore calls on this replica, by state: waiting (queued) or holding a permit.", "state")
	dBarriers     = desc("barrier_waiting", "AwaitBarrier calls waiting on this replica.")
	dRefusals     = desc("limit_refusals_total", "Calls refused by a principal's limit, by limit: requests (rate), streams, watched_groups, leases.", "limit")
	dPolls        = desc("blocking_queries", "Blocking queries (long-polls) waiting on this replica.")
	replicaDescs  = []*prometheus.Desc{dInfo, dConnected, dState, dExpirations, dGCMultis, dGCCalls, dGCWait, dLeases, dLeaseGrants, dLeaseAdopts, dLeaseEnds, dKeepAlives, dGroups, dMembers, dWatchers, dResyncs, dJournalLag, dSlowCuts, dCatchUps, dCandidates, dLeaders, dTerms, dJeopardy, dLocks, dTries, dPermits, dBarriers, dRefusals, dPolls}
	sessionStates = []zkx.State{zkx.StateConnecting, zkx.StateConnected, zkx.StateDisconnected, zkx.StateExpired, zkx.StateClosed}
)

func (c *replica) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range replicaDescs {
		ch <- d
	}
}

func (c *replica) Collect(ch chan<- prometheus.Metric) {
	r := c.src.Replica
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(dInfo, 1, r.ID(), c.src.Version)
	st := r.Session.Status()
	gauge(dConnected, bool01(st.State == zkx.StateConnected))
	for _, s := range sessionStates {
		gauge(dState, bool01(st.State == s), s.String())
	}
	counter(dExpirations, st.Expirations)
	gc := r.Session.GroupCommit()
	counter(dGCMultis, gc.Multis)
	counter(dGCCalls, gc.Calls)
	ch <- prometheus.MustNewConstMetric(dGCWait, prometheus.CounterValue, gc.Queued.Seconds(), "queued")
	ch <- prometheus.MustNewConstMetric(dGCWait, prometheus.CounterValue, gc.InFlight.Seconds(), "in_flight")

	ls := r.Leases.Stats()
	gauge(dLeases, float64(ls.Owned), "owned")
	gauge(dLeases, float64(ls.HandingOff), "handing_off")
	counter(dLeaseGrants, ls.Granted)
	counter(dLeaseAdopts, ls.Adopted)
	counter(dLeaseEnds, ls.Expired, "expired")
	counter(dLeaseEnds, ls.Revoked, "revoked")
	counter(dLeaseEnds, ls.HandedOff, "handed_off")
	counter(dKeepAlives, ls.KeepAlivesServed, "served")
	counter(dKeepAlives, ls.KeepAlivesForwarded, "forwarded")

	rs := r.Registry.Stats()
	gauge(dGroups, float64(rs.Groups))
	gauge(dMembers, float64(rs.Members))
	gauge(dWatchers, float64(rs.Watchers))
	counter(dResyncs, rs.Resyncs)
	counter(dSlowCuts, rs.SlowWatcherCuts)
	counter(dCatchUps, rs.CatchUps-rs.CatchUpLists, "skipped")
	counter(dCatchUps, rs.CatchUpLists, "listed")
	ch <- lagHistogram(rs.JournalLag)

	es := r.Elections.Stats()
	gauge(dCandidates, float64(es.Candidates))
	gauge(dLeaders, float64(es.Leaders))
	counter(dTerms, es.Terms)
	ks, ss := r.Locks.Stats(), r.Semaphores.Stats()
	counter(dJeopardy, es.JeopardyNotices, "election")
	counter(dJeopardy, ks.JeopardyNotices, "lock")
	counter(dJeopardy, ss.JeopardyNotices, "semaphore")
	gauge(dLocks, float64(ks.Waiting), "waiting")
	gauge(dLocks, float64(ks.Holding), "holding")
	gauge(dPermits, float64(ss.Waiting), "waiting")
	gauge(dPermits, float64(ss.Holding), "holding")
	counter(dTries, ks.TriesAcquired, "lock", "acquired")
	counter(dTries, ks.TriesBusy, "lock", "busy")
	counter(dTries, ss.TriesAcquired, "semaphore", "acquired")
	counter(dTries, ss.TriesBusy, "semaphore", "busy")

	gauge(dBarriers, float64(r.Barriers.Stats().Waiting))

	var lr auth.Refusals
	if c.src.Limiter != nil {
		lr = c.src.Limiter.Refusals()
	}
	counter(dRefusals, lr.Requests, "requests")
	counter(dRefusals, lr.Streams, "streams")
	counter(dRefusals, lr.WatchedGroups, "watched_groups")
	counter(dRefusals, ls.LimitRefused, "leases")
	var polls int64
	if c.src.Polls != nil {
		polls = c.src.Polls()
	}
	gauge(dPolls, float64(polls))
}

// lagHistogram is the registry's journal lag as a Prometheus histogram.
func lagHistogram(l registry.Lag) prometheus.Metric {
	buckets := make(map[float64]uint64, len(registry.LagBounds))
	for i, b := range registry.LagBounds {
		buckets[b.Seconds()] = l.Counts[i]
	}
	return prometheus.MustNewConstHistogram(dJournalLag, l.Count, l.Sum.Seconds(), buckets)
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Claim reserves m for one replica, before the replica is built (so that a
// second gateway on the same Metrics is refused before it starts); release
// gives it up. Watch needs a claim.
func (m *Metrics) Claim() (release func(), err error) {
	if !m.watched.CompareAndSwap(false, true) {
		return nil, errors.New("metrics: already watching a replica; use one Metrics per gateway")
	}
	return func() { m.watched.Store(false) }, nil
}

// Watch adds src's replica to m, claimed for it (Claim): its collector
// reads the replica at each scrape. unwatch removes it and gives the
// claim up (call it when the replica closes).
func (m *Metrics) Watch(src Source) (unwatch func(), err error) {
	if src.Replica == nil {
		return nil, errors.New("metrics: watch: no replica")
	}
	if !m.watched.Load() {
		return nil, errors.New("metrics: watch: not claimed")
	}
	c := &replica{src: src}
	if err := m.reg.Register(c); err != nil {
		return nil, err
	}
	return func() {
		m.reg.Unregister(c)
		m.watched.Store(false)
	}, nil
}
