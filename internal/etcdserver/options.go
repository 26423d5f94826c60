package etcdserver

import "io"

type options struct {
	dir      string
	binary   string
	logLevel string
	logs     io.Writer
	pprof    bool
}

func defaultOptions() options {
	return options{binary: DefaultBinary, logLevel: "warn", logs: io.Discard}
}

// Option configures Start.
type Option func(*options)

// WithDir keeps the server's data in dir (kept after Stop). Default: a new
// temporary directory, removed by Stop.
func WithDir(dir string) Option { return func(o *options) { o.dir = dir } }

// WithBinary runs another etcd binary. Default: /usr/bin/etcd.
func WithBinary(path string) Option { return func(o *options) { o.binary = path } }

// WithLogs sends the server's log to w. Default: discarded.
func WithLogs(w io.Writer) Option { return func(o *options) { o.logs = w } }

// WithLogLevel sets etcd's log level (debug, info, warn, error). Default:
// warn.
func WithLogLevel(level string) Option { return func(o *options) { o.logLevel = level } }

// WithPprof serves Go's profiles on the client URL (etcd's
// --enable-pprof), /debug/pprof/: what a caller uses to force a GC
// (heap?gc=1) before reading memory from /metrics. Default: off.
func WithPprof(on bool) Option { return func(o *options) { o.pprof = on } }
