package dnsview

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Defaults and bounds of the options.
const (
	// DefaultDomain is the domain the view answers for without WithDomain.
	DefaultDomain = "zkcoord."
	// DefaultTTL is the TTL of every record without WithTTL: a member that
	// leaves is gone from resolvers' caches within it.
	DefaultTTL = 5 * time.Second
	// MaxTTL bounds WithTTL: the view is for short-lived answers.
	MaxTTL = time.Hour
	// AllGroups, given to WithGroups, admits every group.
	AllGroups = "*"
)

// Option configures a Server. An option refuses a value it cannot work
// with, and New (or Check) returns that error.
type Option func(*options) error

type options struct {
	domain   string   // fully qualified, lower case
	ttl      uint32   // seconds
	prefixes []string // lower case; nil with all
	all      bool
	grouped  bool // WithGroups was given
	timeout  time.Duration
	serving  func() bool
	log      *slog.Logger
}

func defaultOptions() options {
	return options{domain: DefaultDomain, ttl: uint32(DefaultTTL / time.Second), timeout: 2 * time.Second,
		serving: func() bool { return true }, log: slog.New(slog.DiscardHandler)}
}

// Check applies opt to the defaults and returns the first option's error,
// or an error when WithGroups is missing: for a command line to refuse a
// bad flag before it connects to anything.
func Check(opt ...Option) error {
	_, err := apply(opt)
	return err
}

func apply(opt []Option) (options, error) {
	o := defaultOptions()
	for _, fn := range opt {
		if err := fn(&o); err != nil {
			return o, err
		}
	}
	if !o.grouped {
		return o, errors.New("dnsview: no groups: say which groups DNS may show (WithGroups), since DNS carries no credentials")
	}
	return o, nil
}

// WithDomain sets the domain the view answers for (default "zkcoord."):
// a group web is web.<domain>. It must be a domain name of letters,
// digits, '-' and '_', with at least one label; case does not matter.
func WithDomain(domain string) Option {
	return func(o *options) error {
		d := strings.ToLower(dns.Fqdn(domain))
		_, ok := dns.IsDomainName(d)
		if !ok || dns.CountLabel(d) == 0 || len(d) > 200 || strings.Trim(d, "abcdefghijklmnopqrstuvwxyz0123456789-_.") != "" || strings.Contains(d, "..") {
			return fmt.Errorf("dnsview: domain %q: want a domain name of letters, digits, '-' and '_', such as %s", domain, DefaultDomain)
		}
		o.domain = d
		return nil
	}
}

// WithTTL sets the TTL of every record, and of negative answers (the
// SOA's minimum), in whole seconds from 0 (resolvers do not cache) to
// MaxTTL (default DefaultTTL).
func WithTTL(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 || d > MaxTTL || d%time.Second != 0 {
			return fmt.Errorf("dnsview: TTL %v: want whole seconds from 0s to %v", d, MaxTTL)
		}
		o.ttl = uint32(d / time.Second)
		return nil
	}
}

// WithGroups sets the groups the view shows: those whose names start with
// one of prefixes, compared without regard to case as DNS names are
// (AllGroups, "*", admits every group). Names outside them are refused.
// A prefix is made of the characters of group names and does not start
// with '.'. Required: DNS carries no credentials, so what it shows is
// chosen here.
func WithGroups(prefixes ...string) Option {
	return func(o *options) error {
		if len(prefixes) == 0 {
			return errors.New("dnsview: groups: want at least one prefix, or * for every group")
		}
		o.grouped, o.all, o.prefixes = true, false, nil
		for _, p := range prefixes {
			switch {
			case p == AllGroups:
				o.all = true
			case !validPrefix(p):
				return fmt.Errorf("dnsview: group prefix %q: want characters of group names [A-Za-z0-9._:@=-], not starting with '.' (or * for every group)", p)
			default:
				o.prefixes = append(o.prefixes, fold(p))
			}
		}
		return nil
	}
}

// WithServing makes the view answer only while serving reports true, and
// SERVFAIL otherwise (so that resolvers ask another replica): package
// server passes whether the replica's cache can still be trusted.
func WithServing(serving func() bool) Option {
	return func(o *options) error {
		if serving == nil {
			return errors.New("dnsview: serving: nil")
		}
		o.serving = serving
		return nil
	}
}

// WithLogger sets the logger (default: discard). Refused and failed
// queries are logged at debug.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("dnsview: logger: nil")
		}
		o.log = l
		return nil
	}
}

// allowed reports whether the group name g (folded) is admitted.
func (o *options) allowed(g string) bool {
	if o.all {
		return true
	}
	for _, p := range o.prefixes {
		if strings.HasPrefix(g, p) {
			return true
		}
	}
	return false
}

func validPrefix(p string) bool {
	if p == "" || len(p) > maxName || p[0] == '.' {
		return false
	}
	for i := 0; i < len(p); i++ {
		if !nameByte(p[i]) && p[i] != '.' {
			return false
		}
	}
	return true
}
