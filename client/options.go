package client

import (
	"log/slog"
	"maps"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	zkcoordv1 "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/auth"
)

// Option configures a Client.
type Option func(*options)

type options struct {
	dialOpts   []grpc.DialOption
	block      bool
	backoffMin time.Duration
	backoffMax time.Duration
	logger     *slog.Logger
}

func defaultOptions() options {
	return options{
		backoffMin: defaultBackoffMin,
		backoffMax: defaultBackoffMax,
		logger:     slog.New(slog.DiscardHandler),
	}
}

// WithDialOptions adds options to the grpc.NewClient call of New, after the
// default insecure transport credentials (so they may replace them).
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dialOpts = append(o.dialOpts, opts...) }
}

// WithToken sends token with every call as "authorization: Bearer
// <token>", for a gateway that authenticates callers. gRPC refuses to send
// it over a connection without TLS (add TLS transport credentials with
// WithDialOptions); see WithInsecureToken.
func WithToken(token string) Option {
	return WithDialOptions(grpc.WithPerRPCCredentials(auth.Bearer(token, true)))
}

// WithInsecureToken is WithToken that also sends the token in clear over a
// plaintext connection: for loopback and tests only.
func WithInsecureToken(token string) Option {
	return WithDialOptions(grpc.WithPerRPCCredentials(auth.Bearer(token, false)))
}

// WithBlock makes New wait until the connection to the gateway is ready, or
// fail when ctx ends first. Without it New returns at once and the first call
// connects.
func WithBlock() Option { return func(o *options) { o.block = true } }

// WithBackoff sets the waits between reconnection attempts of keepalives,
// watches, observations and awaits: they grow from min to max, each drawn at
// random from its upper half. A min of zero or less keeps the default
// (100ms); a max below min is raised to min. Default max: 5s.
func WithBackoff(min, max time.Duration) Option {
	lo, hi := min, max
	return func(o *options) {
		if lo > 0 {
			o.backoffMin = lo
		}
		o.backoffMax = hi
		if o.backoffMax < o.backoffMin {
			o.backoffMax = o.backoffMin
		}
	}
}

// WithLogger sends the client's reports of retries and restores to l (at
// debug and warn level). Default: discarded.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// SessionOption configures a Session.
type SessionOption func(*sessionOptions)

type sessionOptions struct {
	ttl       time.Duration
	onRestore func(lease string, err error)
}

// DefaultTTL is the lease TTL of a Session without WithTTL.
const DefaultTTL = 10 * time.Second

// WithTTL sets the TTL of the session's lease: how long what the session owns
// outlives the session's last keepalive. The gateway accepts 1s to 24h;
// values under 1s are raised to 1s. Default: DefaultTTL.
func WithTTL(ttl time.Duration) SessionOption {
	return func(o *sessionOptions) { o.ttl = max(ttl, time.Second) }
}

// WithOnRestore calls fn each time the session has replaced a lost lease:
// after it granted the new lease and registered again every member that its
// Register calls had made. err joins the errors of registrations that could
// not be made again (a member ID taken meanwhile by another owner, say);
// those are dropped from the session. fn runs on the session's goroutine and
// delays its keepalives: it must return quickly.
func WithOnRestore(fn func(lease string, err error)) SessionOption {
	return func(o *sessionOptions) { o.onRestore = fn }
}

// RegisterOption configures a registration.
type RegisterOption func(*registerOptions)

type registerOptions struct {
	metadata map[string]string
}

// WithMetadata adds md to the member's metadata (copying it).
func WithMetadata(md map[string]string) RegisterOption {
	return func(o *registerOptions) {
		if o.metadata == nil {
			o.metadata = make(map[string]string, len(md))
		}
		maps.Copy(o.metadata, md)
	}
}

// LookupOption configures a Lookup: Member, Linearizable, and the
// PollOptions AfterRevision and Wait.
type LookupOption interface {
	applyLookup(*lookupOptions)
}

type lookupOptions struct {
	memberID     string
	linearizable bool
	pageSize     int32
	poll         pollOptions
}

type lookupOption func(*lookupOptions)

func (f lookupOption) applyLookup(o *lookupOptions) { f(o) }

// Linearizable makes a Lookup sync with the ZooKeeper leader first: it sees
// every change made before it was called (with Wait, before it answered).
// Default: the gateway's cache, which may lag by the time a ZooKeeper watch
// takes to arrive.
func Linearizable() LookupOption {
	return lookupOption(func(o *lookupOptions) { o.linearizable = true })
}

// Member makes a Lookup read one member; it fails with ErrNotFound when the
// member does not exist.
func Member(id string) LookupOption {
	return lookupOption(func(o *lookupOptions) { o.memberID = id })
}

// DefaultPageSize is the page of a whole-group Lookup without PageSize.
const DefaultPageSize = 10000

// PageSize sets how many members each page of a whole-group Lookup holds
// (DefaultPageSize when 0; at most 50,000). Lookup reads
// every page, all at the revision of the first, and returns them
// together: a smaller page costs more calls, and a gateway never sends a
// page over 2 MiB whatever its size.
func PageSize(n int) LookupOption {
	return lookupOption(func(o *lookupOptions) { o.pageSize = int32(min(max(n, 0), 50000)) })
}

// PollOption makes a read (Lookup, Leader, GetBarrier) a blocking query, a
// long-poll for callers that do not hold a stream: with AfterRevision and
// Wait the gateway answers once the thing read has changed after the
// revision, or when the wait ends. A PollOption is also a LookupOption.
type PollOption func(*pollOptions)

type pollOptions struct {
	after int64
	wait  time.Duration
}

func (f PollOption) applyLookup(o *lookupOptions) { f(&o.poll) }

// AfterRevision is the revision to wait past: that of the read's last
// answer. With Wait, the read answers once the group (Lookup), the leader
// (Leader) or the barrier (GetBarrier) has changed after it, at once when
// it has already. 0 (the default) answers at once: the first read of a
// loop. A revision ahead of the gateway's (another ensemble, say) is
// answered at once with a lower revision: start again from it.
func AfterRevision(rev int64) PollOption {
	return func(o *pollOptions) { o.after = rev }
}

// Wait is how long a read with AfterRevision may wait for a change, at
// most 5m (longer fails with codes.InvalidArgument). The gateway adds up to
// d/16 at random, answers before ctx's deadline when ctx has one, and
// answers at once with the current state when it shuts down. A return
// does not promise a change: compare the answer, and pass its revision to
// the next read. Default 0: answer at once.
func Wait(d time.Duration) PollOption {
	return func(o *pollOptions) { o.wait = d }
}

func newPollOptions(opts []PollOption) pollOptions {
	var o pollOptions
	for _, fn := range opts {
		fn(&o)
	}
	return o
}

// waitPB is the request's wait: nil for none.
func (o pollOptions) waitPB() *durationpb.Duration {
	if o.wait == 0 {
		return nil
	}
	return durationpb.New(o.wait)
}

// CampaignOption configures a Campaign.
type CampaignOption func(*campaignOptions)

type campaignOptions struct {
	onQueued func(position int, leader *zkcoordv1.LeaderInfo)
}

// WithOnQueued calls fn each time the gateway reports the candidate's place
// in the queue while Campaign waits: position is how many candidates are
// ahead, leader the current leader (nil when unknown). fn runs on the
// goroutine that called Campaign.
func WithOnQueued(fn func(position int, leader *zkcoordv1.LeaderInfo)) CampaignOption {
	return func(o *campaignOptions) { o.onQueued = fn }
}

// AwaitOption configures AwaitBarrier and AwaitGroup.
type AwaitOption func(*awaitOptions)

type awaitOptions struct {
	progress      func(have, want int)
	participantID string
}

// WithProgress calls fn each time the gateway reports progress: have is how
// many participants have arrived (AwaitBarrier) or how many members the
// group has (AwaitGroup), want the threshold. fn runs on the goroutine that
// waits.
func WithProgress(fn func(have, want int)) AwaitOption {
	return func(o *awaitOptions) { o.progress = fn }
}

// WithParticipantID sets the participant's ID in AwaitBarrier. Default: the
// gateway generates one.
func WithParticipantID(id string) AwaitOption {
	return func(o *awaitOptions) { o.participantID = id }
}
