//go:build linux

// Command zkwriteprobe splits one ZooKeeper write into its parts: it starts
// a private standalone ZooKeeper (the machine's install, as make bench
// does), sends sequential SetData requests from one go-zookeeper client,
// and with -perf traces ZooKeeper's SyncThread with perf to time, for each
// request, the stretch before its log write, the log write with its flush,
// and the stretch after it until the client has the answer.
//
// It is an experiment tool behind docs/BENCHMARKS.md ("Ninth stop"), not
// part of make bench: the trace needs perf and root.
//
//	zkwriteprobe -flush=true -perf
//	zkwriteprobe -flush=false -perf
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-zookeeper/zk"
	"golang.org/x/sys/unix"

	"github.com/zkcoord/zkcoord/internal/zkserver"
)

func main() {
	var (
		flush = flag.Bool("flush", true, "ZooKeeper flushes its log before it answers a write (forceSync)")
		n     = flag.Int("n", 5000, "SetData requests measured")
		warm  = flag.Int("warm", 5000, "SetData requests before the measured ones (the JIT's warm-up)")
		trace = flag.Bool("perf", false, "trace ZooKeeper's SyncThread with perf and split each request")
		disk  = flag.Bool("disk", false, "first time n bare appends of a log-record-sized write and fdatasync, in a file padded as ZooKeeper pads its log")
	)
	flag.Parse()
	if *n < 1 || *warm < 0 {
		fmt.Fprintln(os.Stderr, "zkwriteprobe: -n must be at least 1 and -warm not negative")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *disk {
		if err := diskFlush(*n); err != nil {
			fmt.Fprintln(os.Stderr, "zkwriteprobe:", err)
			os.Exit(1)
		}
	}
	if err := run(ctx, *flush, *n, *warm, *trace); err != nil {
		fmt.Fprintln(os.Stderr, "zkwriteprobe:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, flush bool, n, warm int, trace bool) error {
	srv, err := zkserver.Start(ctx, zkserver.WithForceSync(flush))
	if err != nil {
		return err
	}
	defer srv.Stop()
	c, ev, err := zk.Connect([]string{srv.Addr()}, 10*time.Second, zk.WithLogInfo(false))
	if err != nil {
		return err
	}
	defer c.Close()
	if err := awaitSession(ctx, ev); err != nil {
		return err
	}
	if _, err := c.Create("/probe", nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		return err
	}

	// perf starts before the warm-up, so it is attached well before the
	// measured requests; only those are split.
	var p *perfTrace
	if trace {
		if p, err = startPerf(srv.Pid()); err != nil {
			return err
		}
		defer p.discard()
	}
	data := make([]byte, 16)
	for i := 0; i < warm; i++ {
		if _, err := c.Set("/probe", data, -1); err != nil {
			return err
		}
	}
	ops := make([]span, n)
	for i := range ops {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		t0 := monotonic()
		if _, err := c.Set("/probe", data, -1); err != nil {
			return err
		}
		ops[i] = span{t0, monotonic()}
	}

	lat := make([]int64, n)
	for i, o := range ops {
		lat[i] = o.end - o.start
	}
	fmt.Printf("SetData, 1 caller, flush=%v: n=%d p50 %s p90 %s p99 %s\n",
		flush, n, us(pct(lat, 50)), us(pct(lat, 90)), us(pct(lat, 99)))
	if p == nil {
		return nil
	}
	events, err := p.stop()
	if err != nil {
		return err
	}
	s := split(ops, events)
	fmt.Printf("split (perf, medians of %d requests with a log write inside): before the log write %s, log write and flush %s, after it %s (request %s)\n",
		len(s.before), us(pct(s.before, 50)), us(pct(s.log, 50)), us(pct(s.after, 50)), us(pct(s.whole, 50)))
	if len(s.before) < n*9/10 {
		return fmt.Errorf("only %d of %d requests had a traced log write: the trace is not usable", len(s.before), n)
	}
	return nil
}

// diskFlush times n appends of 87 bytes (a SetData's log record here), each
// followed by fdatasync, to a file in the temporary directory (where
// zkserver puts ZooKeeper's data) padded as ZooKeeper pads its log: one
// byte written at 64 MiB, the rest a hole.
func diskFlush(n int) error {
	f, err := os.CreateTemp("", "zkwriteprobe-disk-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := f.WriteAt([]byte{0}, 64<<20-1); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	rec := make([]byte, 87)
	lat := make([]int64, n)
	for i := range lat {
		t0 := monotonic()
		if _, err := f.WriteAt(rec, int64(i*len(rec))); err != nil {
			return err
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			return err
		}
		lat[i] = monotonic() - t0
	}
	fmt.Printf("bare write of 87 bytes + fdatasync, padded file: n=%d p50 %s p90 %s p99 %s\n",
		n, us(pct(lat, 50)), us(pct(lat, 90)), us(pct(lat, 99)))
	return nil
}

func awaitSession(ctx context.Context, ev <-chan zk.Event) error {
	for {
		select {
		case e := <-ev:
			if e.State == zk.StateHasSession {
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// span is one request, from before the call to after its answer, in
// CLOCK_MONOTONIC nanoseconds (perf records with -k CLOCK_MONOTONIC, so
// both share one clock).
type span struct{ start, end int64 }

func monotonic() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// perfTrace records the write and fdatasync system calls of ZooKeeper's
// threads.
type perfTrace struct {
	cmd  *exec.Cmd
	dir  string
	errs bytes.Buffer
}

func startPerf(pid int) (*perfTrace, error) {
	// perf's file goes to memory when it can: written to the disk under
	// test, it would compete with the flushes it times.
	base := ""
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		base = "/dev/shm"
	}
	dir, err := os.MkdirTemp(base, "zkwriteprobe-")
	if err != nil {
		return nil, err
	}
	p := &perfTrace{dir: dir}
	p.cmd = exec.Command("perf", "record", "-q", "-k", "CLOCK_MONOTONIC",
		"-e", "syscalls:sys_enter_write,syscalls:sys_exit_write,syscalls:sys_enter_fdatasync,syscalls:sys_exit_fdatasync",
		"-p", strconv.Itoa(pid), "-o", filepath.Join(dir, "perf.data"))
	p.cmd.Stderr = &p.errs
	if err := p.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("perf: %w", err)
	}
	return p, nil
}

// stop ends the recording and returns the SyncThread's events.
func (p *perfTrace) stop() ([]event, error) {
	_ = p.cmd.Process.Signal(os.Interrupt)
	// perf record ends on the interrupt it was sent (its status says so);
	// whether it wrote a usable file is perf script's to tell.
	if err := p.cmd.Wait(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return nil, fmt.Errorf("perf record: %v: %s", err, p.errs.String())
		}
	}
	out, err := exec.Command("perf", "script", "--ns", "-F", "comm,time,event,trace",
		"-i", filepath.Join(p.dir, "perf.data")).Output()
	if err != nil {
		return nil, fmt.Errorf("perf script: %w (perf record: %s)", err, strings.TrimSpace(p.errs.String()))
	}
	return parseEvents(out)
}

func (p *perfTrace) discard() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	}
	os.RemoveAll(p.dir)
}

type eventKind int

const (
	logWrite  eventKind = iota // enter of a write that is not the 8-byte selector wake-up
	writeDone                  // exit of a write
	flushDone                  // exit of fdatasync
)

type event struct {
	at   int64
	kind eventKind
}

// parseEvents reads perf script lines of ZooKeeper's SyncThread:
//
//	SyncThread:0 8233.198397939: syscalls:sys_enter_write: fd: 0x00000019, buf: 0x..., count: 0x00000057
//
// The SyncThread writes the log record (then fdatasyncs it when flushing),
// and after it the 8-byte wake-up of the NIO selector that sends the answer.
func parseEvents(out []byte) ([]event, error) {
	var evs []event
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "SyncThread") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		at, err := parseTime(f[1])
		if err != nil {
			return nil, fmt.Errorf("perf script line %q: %w", line, err)
		}
		switch name := strings.TrimSuffix(f[2], ":"); {
		case name == "syscalls:sys_enter_write" && !strings.HasSuffix(line, "count: 0x00000008"):
			evs = append(evs, event{at, logWrite})
		case name == "syscalls:sys_exit_write":
			evs = append(evs, event{at, writeDone})
		case name == "syscalls:sys_exit_fdatasync":
			evs = append(evs, event{at, flushDone})
		}
	}
	return evs, sc.Err()
}

// parseTime reads perf's "seconds.nanoseconds:" timestamp.
func parseTime(s string) (int64, error) {
	sec, ns, ok := strings.Cut(strings.TrimSuffix(s, ":"), ".")
	if !ok || len(ns) != 9 {
		return 0, fmt.Errorf("timestamp %q is not seconds.nanoseconds", s)
	}
	a, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return 0, err
	}
	b, err := strconv.ParseInt(ns, 10, 64)
	if err != nil {
		return 0, err
	}
	return a*1e9 + b, nil
}

type parts struct{ before, log, after, whole []int64 }

// split finds, inside each request, the SyncThread's log write and the end
// of its flush (or, without the flush, of the write itself).
func split(ops []span, evs []event) parts {
	var s parts
	j := 0
	for _, o := range ops {
		for j < len(evs) && evs[j].at < o.start {
			j++
		}
		var w, end int64
		for k := j; k < len(evs) && evs[k].at <= o.end; k++ {
			switch e := evs[k]; {
			case w == 0 && e.kind == logWrite:
				w = e.at
			case w != 0 && e.kind == writeDone && end == 0:
				end = e.at
			case w != 0 && e.kind == flushDone:
				end = e.at
			}
		}
		if w == 0 || end == 0 {
			continue
		}
		s.before = append(s.before, w-o.start)
		s.log = append(s.log, end-w)
		s.after = append(s.after, o.end-end)
		s.whole = append(s.whole, o.end-o.start)
	}
	return s
}

func pct(v []int64, p int) int64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

func us(ns int64) string { return fmt.Sprintf("%.0f µs", float64(ns)/1e3) }
