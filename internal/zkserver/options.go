package zkserver

import (
	"io"
	"time"
)

type options struct {
	dir             string
	port            int
	tls             *TLS
	tickTime        time.Duration
	minSession      time.Duration
	maxSession      time.Duration
	fourLetterWords []string
	jars            []string
	jvmFlags        []string
	heap            string
	logLevel        string
	logs            io.Writer
	forceSync       bool
}

func defaultOptions() options {
	return options{
		tickTime:        200 * time.Millisecond,
		minSession:      400 * time.Millisecond,
		maxSession:      60 * time.Second,
		fourLetterWords: []string{"ruok", "srvr", "stat", "mntr", "wchc", "wchp", "wchs", "cons", "conf", "envi"},
		jars:            DefaultJars,
		heap:            "256m",
		logLevel:        "warn",
		logs:            io.Discard,
		forceSync:       false,
	}
}

// Option configures Start.
type Option func(*options)

// WithDir keeps the server's config and data in dir (kept after Stop).
// Default: a new temporary directory, removed by Stop.
func WithDir(dir string) Option { return func(o *options) { o.dir = dir } }

// WithPort sets the client port. Default: a free port.
func WithPort(port int) Option { return func(o *options) { o.port = port } }

// WithLogs sends the server's console log to w. Default: discarded.
func WithLogs(w io.Writer) Option { return func(o *options) { o.logs = w } }

// WithLogLevel sets the server's log level (trace, debug, info, warn, error).
// Default: warn.
func WithLogLevel(level string) Option { return func(o *options) { o.logLevel = level } }

// WithTickTime sets ZooKeeper's tickTime. Default: 200ms.
func WithTickTime(d time.Duration) Option { return func(o *options) { o.tickTime = d } }

// WithSessionTimeouts sets the bounds ZooKeeper clamps session timeouts to.
// Default: 400ms to 60s.
func WithSessionTimeouts(min, max time.Duration) Option {
	return func(o *options) { o.minSession, o.maxSession = min, max }
}

// WithForceSync makes ZooKeeper fsync its log on every write, as production
// does. Default: off, which is faster for tests on shared disks.
func WithForceSync(on bool) Option { return func(o *options) { o.forceSync = on } }

// WithJVMFlags adds flags to the java command line.
func WithJVMFlags(flags ...string) Option {
	return func(o *options) { o.jvmFlags = append(o.jvmFlags, flags...) }
}

// TLS configures a secure client port (ZooKeeper's secureClientPort,
// served by Netty) besides the plain one, from PEM files.
type TLS struct {
	// KeyStore holds the server's private key (PKCS#8, unencrypted)
	// followed by its certificate chain.
	KeyStore string
	// TrustStore holds the CA certificates client certificates must chain
	// to.
	TrustStore string
	// NeedClientAuth refuses clients without such a certificate.
	NeedClientAuth bool
}

// WithTLS also serves clients over TLS on a secure port (SecureAddr).
func WithTLS(t TLS) Option { return func(o *options) { o.tls = &t } }
