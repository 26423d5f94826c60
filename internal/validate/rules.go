package validate

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/types/known/durationpb"

	zkcoordv1 "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

// Limits the rules enforce. They match the comments in proto/zkcoord/v1.
const (
	// MaxNameLen is the longest group, election, barrier, lock, member or
	// participant name, in characters.
	MaxNameLen = 128
	// LeaseIDLen is the length of a lease ID, in lowercase hex characters.
	LeaseIDLen = 32
	// HoldIDLen is the length of a lock hold's ID, in lowercase hex
	// characters.
	HoldIDLen = 16
	// MaxValueBytes is the largest member or candidate value.
	MaxValueBytes = 64 << 10
	// MaxMetadataEntries is the most metadata entries a member may have.
	MaxMetadataEntries = 64
	// MaxMetadataKeyLen is the longest metadata key, in characters.
	MaxMetadataKeyLen = 128
	// MaxMetadataBytes bounds a member's metadata keys and values together.
	MaxMetadataBytes = 16 << 10
	// MinTTL is the shortest lease TTL.
	MinTTL = time.Second
	// MaxTTL is the longest lease TTL.
	MaxTTL = 24 * time.Hour
	// MaxThreshold is the largest barrier threshold or AwaitGroup
	// min_members.
	MaxThreshold = 100000
	// MaxWait is the longest wait of a blocking query (Lookup, Leader,
	// GetBarrier), before the gateway's jitter.
	MaxWait = 5 * time.Minute
)

// Descriptions shared by several rules.
var (
	descRequired = "is required"
	descName     = fmt.Sprintf("must be 1-%d characters of [A-Za-z0-9._:@=-], not starting with '.'", MaxNameLen)
	descLeaseID  = fmt.Sprintf("malformed lease id: must be %d lowercase hex characters", LeaseIDLen)
	descHold     = fmt.Sprintf("malformed hold id: must be %d lowercase hex characters", HoldIDLen)
	descKey      = fmt.Sprintf("key must be 1-%d characters of [A-Za-z0-9._:/-]", MaxMetadataKeyLen)
	descTTL      = fmt.Sprintf("must be between %s and %s", shortDuration(MinTTL), shortDuration(MaxTTL))
	descWait     = fmt.Sprintf("must be between 0s and %s", shortDuration(MaxWait))
)

// rules returns the violations of msg, and false when there are no rules
// for msg's type.
func rules(msg any) ([]*errdetails.BadRequest_FieldViolation, bool) {
	var v violations
	switch m := msg.(type) {
	// lease.proto
	case *zkcoordv1.GrantRequest:
		v.requiredTTL("ttl", m.GetTtl())
	case *zkcoordv1.KeepAliveRequest:
		v.leaseID("lease_id", m.GetLeaseId(), true)
	case *zkcoordv1.KeepAliveStreamRequest:
		v.leaseID("lease_id", m.GetLeaseId(), true)
	case *zkcoordv1.RevokeRequest:
		v.leaseID("lease_id", m.GetLeaseId(), true)
	case *zkcoordv1.GetLeaseRequest:
		v.leaseID("lease_id", m.GetLeaseId(), true)

	// registry.proto
	case *zkcoordv1.RegisterRequest:
		v.name("group", m.GetGroup(), true)
		v.name("member_id", m.GetMemberId(), false)
		v.value("value", m.GetValue())
		v.metadata("metadata", m.GetMetadata())
		v.leaseID("lease_id", m.GetLeaseId(), false)
		v.ttl("ttl", m.GetTtl())
		v.owner(m)
	case *zkcoordv1.DeregisterRequest:
		v.name("group", m.GetGroup(), true)
		v.name("member_id", m.GetMemberId(), true)
		v.leaseID("lease_id", m.GetLeaseId(), false)
	case *zkcoordv1.LookupRequest:
		v.name("group", m.GetGroup(), true)
		v.name("member_id", m.GetMemberId(), false)
		if _, ok := zkcoordv1.Consistency_name[int32(m.GetConsistency())]; !ok {
			v.addf("consistency", "must be a defined Consistency value, not %d", m.GetConsistency())
		}
		v.revision("after_revision", m.GetAfterRevision())
		v.wait("wait", m.GetWait())
		v.lookupPage(m)
	case *zkcoordv1.WatchGroupRequest:
		v.name("group", m.GetGroup(), true)
		v.revision("start_revision", m.GetStartRevision())
		v.memberPage("snapshot_page_size", m.GetSnapshotPageSize())
	case *zkcoordv1.WatchCreateRequest: // checked one create at a time by the Watch handler
		v.name("group", m.GetGroup(), true)
		v.revision("start_revision", m.GetStartRevision())
		v.revision("watch_id", m.GetWatchId())
		v.memberPage("snapshot_page_size", m.GetSnapshotPageSize())

	// election.proto
	case *zkcoordv1.CampaignRequest:
		v.name("election", m.GetElection(), true)
		v.value("value", m.GetValue())
		v.leaseID("lease_id", m.GetLeaseId(), false)
		v.ttl("ttl", m.GetTtl())
		v.leaseOrTTL(m.GetLeaseId(), m.GetTtl())
	case *zkcoordv1.ResignRequest:
		v.name("election", m.GetElection(), true)
		v.leaseID("lease_id", m.GetLeaseId(), true)
	case *zkcoordv1.LeaderRequest:
		v.name("election", m.GetElection(), true)
		v.revision("after_revision", m.GetAfterRevision())
		v.wait("wait", m.GetWait())
	case *zkcoordv1.ObserveRequest:
		v.name("election", m.GetElection(), true)

	// barrier.proto
	case *zkcoordv1.AwaitBarrierRequest:
		v.name("barrier", m.GetBarrier(), true)
		v.count("threshold", m.GetThreshold())
		v.name("participant_id", m.GetParticipantId(), false)
		v.leaseID("lease_id", m.GetLeaseId(), false)
		v.ttl("ttl", m.GetTtl())
		v.leaseOrTTL(m.GetLeaseId(), m.GetTtl())
	case *zkcoordv1.JoinBarrierRequest:
		v.name("barrier", m.GetBarrier(), true)
		v.count("threshold", m.GetThreshold())
		v.name("participant_id", m.GetParticipantId(), false)
		v.leaseID("lease_id", m.GetLeaseId(), false)
		v.ttl("ttl", m.GetTtl())
		if m.GetLeaseId() == "" && m.GetTtl() == nil {
			v.add("lease_id", "one of lease_id or ttl is required")
		}
		v.leaseOrTTL(m.GetLeaseId(), m.GetTtl())
	case *zkcoordv1.GetBarrierRequest:
		v.name("barrier", m.GetBarrier(), true)
		v.revision("after_revision", m.GetAfterRevision())
		v.wait("wait", m.GetWait())
	case *zkcoordv1.LeaveBarrierRequest:
		v.name("barrier", m.GetBarrier(), true)
		v.name("participant_id", m.GetParticipantId(), true)
		v.leaseID("lease_id", m.GetLeaseId(), true)
	case *zkcoordv1.AwaitGroupRequest:
		v.name("group", m.GetGroup(), true)
		v.count("min_members", m.GetMinMembers())

	// semaphore.proto (semaphore.go)
	case *zkcoordv1.AcquireSemaphoreRequest, *zkcoordv1.TryAcquireSemaphoreRequest,
		*zkcoordv1.ReleaseSemaphoreRequest, *zkcoordv1.GetSemaphoreRequest:
		v.semaphore(m)

	// status.proto
	case *zkcoordv1.GetStatusRequest:
		// Nothing to check.
	default:
		if !lockRules(msg, &v) && !inspectRules(msg, &v) {
			return nil, false
		}
	}
	return v, true
}

// violations collects the field violations of one message, in field order.
type violations []*errdetails.BadRequest_FieldViolation

func (v *violations) add(field, desc string) {
	*v = append(*v, &errdetails.BadRequest_FieldViolation{Field: field, Description: desc})
}

func (v *violations) addf(field, format string, args ...any) {
	v.add(field, fmt.Sprintf(format, args...))
}

// name checks a group, election, barrier, member or participant name. An
// empty name is a violation only when required.
func (v *violations) name(field, s string, required bool) {
	switch {
	case s == "":
		if required {
			v.add(field, descRequired)
		}
	case !validName(s):
		v.add(field, descName)
	}
}

// leaseID checks a lease ID. An empty ID is a violation only when required.
func (v *violations) leaseID(field, s string, required bool) {
	switch {
	case s == "":
		if required {
			v.add(field, descRequired)
		}
	case !validLeaseID(s):
		v.add(field, descLeaseID)
	}
}

// ttl checks a lease TTL when it is set.
func (v *violations) ttl(field string, d *durationpb.Duration) {
	if d == nil {
		return
	}
	if err := d.CheckValid(); err != nil {
		v.addf(field, "is not a valid duration: %v", err)
		return
	}
	if t := d.AsDuration(); t < MinTTL || t > MaxTTL {
		v.add(field, descTTL)
	}
}

// wait checks the wait of a blocking query when it is set: from 0 (answer
// at once) to MaxWait.
func (v *violations) wait(field string, d *durationpb.Duration) {
	if d == nil {
		return
	}
	if err := d.CheckValid(); err != nil {
		v.addf(field, "is not a valid duration: %v", err)
		return
	}
	if t := d.AsDuration(); t < 0 || t > MaxWait {
		v.add(field, descWait)
	}
}

// revision checks a revision to resume or wait after: not negative.
func (v *violations) revision(field string, r int64) {
	if r < 0 {
		v.addf(field, "must not be negative, not %d", r)
	}
}

// requiredTTL checks a lease TTL that must be set.
func (v *violations) requiredTTL(field string, d *durationpb.Duration) {
	if d == nil {
		v.add(field, descRequired)
		return
	}
	v.ttl(field, d)
}

// value checks a member's or candidate's value.
func (v *violations) value(field, s string) {
	if len(s) > MaxValueBytes {
		v.addf(field, "must be at most %d bytes, not %d", MaxValueBytes, len(s))
	}
}

// count checks a barrier threshold or a group's min_members.
func (v *violations) count(field string, n int32) {
	if n < 1 || n > MaxThreshold {
		v.addf(field, "must be between 1 and %d, not %d", MaxThreshold, n)
	}
}

// metadata checks a member's metadata: the number of entries, their total
// size, and each key and value. Keys are checked in sorted order, and only
// when the entry count is within bounds, so that a huge map does not make a
// huge error.
func (v *violations) metadata(field string, md map[string]string) {
	if len(md) > MaxMetadataEntries {
		v.addf(field, "must have at most %d entries, not %d", MaxMetadataEntries, len(md))
	}
	total := 0
	for k, val := range md {
		total += len(k) + len(val)
	}
	if total > MaxMetadataBytes {
		v.addf(field, "keys and values must total at most %d bytes, not %d", MaxMetadataBytes, total)
	}
	if len(md) > MaxMetadataEntries {
		return
	}
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		entry := field + "[" + strconv.Quote(k) + "]"
		if !validKey(k) {
			v.add(entry, descKey)
		}
		if !utf8.ValidString(md[k]) {
			v.add(entry, "value must be valid UTF-8")
		}
	}
}

// owner checks that a RegisterRequest sets exactly one of lease_id, ttl and
// persistent.
func (v *violations) owner(m *zkcoordv1.RegisterRequest) {
	var set []string
	if m.GetLeaseId() != "" {
		set = append(set, "lease_id")
	}
	if m.GetTtl() != nil {
		set = append(set, "ttl")
	}
	if m.GetPersistent() {
		set = append(set, "persistent")
	}
	if len(set) == 0 {
		v.add("lease_id", "one of lease_id, ttl or persistent is required")
		return
	}
	for _, f := range set[1:] {
		v.addf(f, "conflicts with %s: set exactly one of lease_id, ttl or persistent", set[0])
	}
}

// leaseOrTTL checks that at most one of lease_id and ttl is set.
func (v *violations) leaseOrTTL(leaseID string, ttl *durationpb.Duration) {
	if leaseID != "" && ttl != nil {
		v.add("ttl", "conflicts with lease_id: set at most one of lease_id or ttl")
	}
}

// validName reports whether s is 1-MaxNameLen characters of
// [A-Za-z0-9._:@=-] not starting with '.'. That rules out '/', "." and
// "..", NUL, '~' and spaces, so a name is always one safe znode name.
func validName(s string) bool {
	if len(s) == 0 || len(s) > MaxNameLen || s[0] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && !strings.ContainsRune("._:@=-", rune(s[i])) {
			return false
		}
	}
	return true
}

// validKey reports whether s is 1-MaxMetadataKeyLen characters of
// [A-Za-z0-9._:/-].
func validKey(s string) bool {
	if len(s) == 0 || len(s) > MaxMetadataKeyLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && !strings.ContainsRune("._:/-", rune(s[i])) {
			return false
		}
	}
	return true
}

// validLeaseID reports whether s is LeaseIDLen lowercase hex characters.
func validLeaseID(s string) bool {
	if len(s) != LeaseIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// shortDuration formats d without trailing zero units: "24h", not "24h0m0s".
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
