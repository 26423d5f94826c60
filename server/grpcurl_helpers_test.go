package server_test

// These tests drive the gateway with the real grpcurl binary (bin/grpcurl,
// built by `make tools`), through server reflection only: no proto files.
// They are the executable form of docs/GRPCURL.md. Streams run grpcurl as a
// subprocess whose stdout is decoded message by message as it arrives, so
// the tests wait for events instead of sleeping.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/testing/testenv"
)

// gcWait bounds every wait for a grpcurl message or exit.
const gcWait = 10 * time.Second

var gcSeq atomic.Int64

// gcName returns a group/election/barrier name unique to this test and call
// (valid for [A-Za-z0-9._:@=-]).
func gcName(t *testing.T, suffix string) string {
	n := strings.NewReplacer("/", ".", "_", "-").Replace(t.Name())
	return fmt.Sprintf("%s.%s.%d", n, suffix, gcSeq.Add(1))
}

// grpcurlBin returns the path of bin/grpcurl, failing the test if it is
// missing: the test must not pass silently without it.
func grpcurlBin(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "bin", "grpcurl"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("grpcurl not found at %s (%v): run make tools", p, err)
	}
	return p
}

// gcArgs builds a grpcurl command line: flags, then the gateway, then the
// method (or list/describe and their argument).
func gcArgs(t *testing.T, flags []string, rest ...string) []string {
	return gcArgsAt(testenv.Gateway(t), flags, rest...)
}

// gcArgsAt is gcArgs for the gateway at addr.
func gcArgsAt(addr string, flags []string, rest ...string) []string {
	args := append([]string{"-plaintext", "-connect-timeout", "5"}, flags...)
	args = append(args, addr)
	return append(args, rest...)
}

// gcResult is a finished grpcurl run.
type gcResult struct {
	stdout, stderr string
	code           int // grpcurl's exit code: 64 + the gRPC code on an RPC error
}

// grpcurlRun runs grpcurl to completion.
func grpcurlRun(t *testing.T, flags []string, rest ...string) gcResult {
	t.Helper()
	return grpcurlRunArgs(t, gcArgs(t, flags, rest...))
}

// grpcurlRunArgs runs grpcurl with the whole command line args.
func grpcurlRunArgs(t *testing.T, args []string) gcResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), gcWait)
	defer cancel()
	cmd := exec.CommandContext(ctx, grpcurlBin(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := gcResult{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ctx.Err() == nil:
		r.code = ee.ExitCode()
	default:
		t.Fatalf("grpcurl %v: %v\n%s", args, err, r.stderr)
	}
	return r
}

// gcCall calls a unary method with data and returns the decoded response.
func gcCall(t *testing.T, method, data string) gcMsg {
	t.Helper()
	r := grpcurlRun(t, []string{"-d", data}, method)
	if r.code != 0 {
		t.Fatalf("grpcurl %s %s: exit %d\n%s", method, data, r.code, r.stderr)
	}
	var m gcMsg
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
		t.Fatalf("grpcurl %s: output is not one JSON object: %v\n%s", method, err, r.stdout)
	}
	return m
}

// gcFail calls a unary method that must fail with the gRPC code named
// wantCode (as grpcurl prints it, e.g. "NotFound") and numbered wantNum;
// it returns grpcurl's stderr.
func gcFail(t *testing.T, method, data, wantCode string, wantNum int) string {
	t.Helper()
	r := grpcurlRun(t, []string{"-d", data}, method)
	if r.code != 64+wantNum || !strings.Contains(r.stderr, "Code: "+wantCode) {
		t.Fatalf("grpcurl %s %s: exit %d, want %d (%s)\nstdout: %s\nstderr: %s",
			method, data, r.code, 64+wantNum, wantCode, r.stdout, r.stderr)
	}
	return r.stderr
}

// gcMsg is one decoded JSON message as grpcurl prints it (int64 fields are
// strings, int32 fields numbers, zero values omitted).
type gcMsg map[string]any

// get returns the value at a dotted path ("leader.value"), nil if absent.
func (m gcMsg) get(path string) any {
	var v any = map[string]any(m)
	for _, k := range strings.Split(path, ".") {
		o, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = o[k]
	}
	return v
}

// str returns the string at path ("" if absent).
func (m gcMsg) str(path string) string {
	switch v := m.get(path).(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		return fmt.Sprint(v)
	}
}

// num returns the integer at path, whether printed as a number (int32) or a
// string (int64); 0 if absent.
func (m gcMsg) num(path string) int64 {
	switch v := m.get(path).(type) {
	case nil:
		return 0
	case float64:
		return int64(v)
	case string:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return -1
		}
		return n
	default:
		return -1
	}
}

// list returns the array at path.
func (m gcMsg) list(path string) []any {
	l, _ := m.get(path).([]any)
	return l
}

func (m gcMsg) String() string {
	b, _ := json.Marshal(map[string]any(m))
	return string(b)
}

// gcStream is a running grpcurl, typically on a streaming method.
type gcStream struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	msgs   chan gcMsg
	done   chan struct{} // closed once grpcurl has exited
	stderr bytes.Buffer
	code   int
	decErr error
}

// grpcurlStart starts grpcurl on method with the request data (or, when
// data is "@", with requests written through send) and decodes its output
// as it arrives. The process is killed at cleanup if still running.
func grpcurlStart(t *testing.T, method, data string, flags ...string) *gcStream {
	t.Helper()
	s := &gcStream{t: t, name: method, msgs: make(chan gcMsg, 1024), done: make(chan struct{})}
	s.cmd = exec.Command(grpcurlBin(t), gcArgs(t, append([]string{"-d", data}, flags...), method)...)
	s.cmd.Stderr = &s.stderr
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if data == "@" {
		if s.stdin, err = s.cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(s.done)
		dec := json.NewDecoder(stdout)
		for {
			var m gcMsg
			if err := dec.Decode(&m); err != nil {
				if err != io.EOF {
					s.decErr = err
					_, _ = io.Copy(io.Discard, stdout)
				}
				break
			}
			s.msgs <- m
		}
		close(s.msgs)
		err := s.cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			s.code = ee.ExitCode()
		} else if err != nil {
			s.code = -1
		}
	}()
	t.Cleanup(s.kill)
	return s
}

// send writes one request to grpcurl's stdin.
func (s *gcStream) send(data string) {
	s.t.Helper()
	if _, err := io.WriteString(s.stdin, data+"\n"); err != nil {
		s.t.Fatalf("%s: write stdin: %v", s.name, err)
	}
}

// closeSend closes grpcurl's stdin: the client half-closes the stream.
func (s *gcStream) closeSend() {
	s.t.Helper()
	if err := s.stdin.Close(); err != nil {
		s.t.Fatalf("%s: close stdin: %v", s.name, err)
	}
}

// next returns the next message, failing if none comes within gcWait.
func (s *gcStream) next() gcMsg {
	s.t.Helper()
	timer := time.NewTimer(gcWait)
	defer timer.Stop()
	select {
	case m, ok := <-s.msgs:
		if !ok {
			<-s.done
			s.t.Fatalf("%s: stream ended (exit %d, decode error %v) while a message was expected\n%s",
				s.name, s.code, s.decErr, s.stderr.String())
		}
		return m
	case <-timer.C:
		s.t.Fatalf("%s: no message within %v", s.name, gcWait)
	}
	return nil
}

// until reads messages until one satisfies ok and returns it; the others
// are returned too, in order.
func (s *gcStream) until(what string, ok func(gcMsg) bool) (gcMsg, []gcMsg) {
	s.t.Helper()
	var skipped []gcMsg
	deadline := time.Now().Add(gcWait)
	for time.Now().Before(deadline) {
		m := s.next()
		if ok(m) {
			return m, skipped
		}
		skipped = append(skipped, m)
	}
	s.t.Fatalf("%s: no %s within %v; got %v", s.name, what, gcWait, skipped)
	return nil, nil
}

// pending returns the messages already received and not read yet, without
// waiting.
func (s *gcStream) pending() []gcMsg {
	var ms []gcMsg
	for {
		select {
		case m, ok := <-s.msgs:
			if !ok {
				return ms
			}
			ms = append(ms, m)
		default:
			return ms
		}
	}
}

// end waits for grpcurl to exit and returns its exit code and stderr,
// failing if it printed a message nobody read.
func (s *gcStream) end() (int, string) {
	s.t.Helper()
	timer := time.NewTimer(gcWait)
	defer timer.Stop()
	select {
	case <-s.done:
	case <-timer.C:
		s.t.Fatalf("%s: still running after %v", s.name, gcWait)
	}
	var extra []gcMsg
	for m := range s.msgs {
		extra = append(extra, m)
	}
	if len(extra) > 0 || s.decErr != nil {
		s.t.Fatalf("%s: unexpected output at the end: %v (decode error %v)", s.name, extra, s.decErr)
	}
	return s.code, s.stderr.String()
}

// endOK waits for grpcurl to exit with status OK.
func (s *gcStream) endOK() {
	s.t.Helper()
	if code, stderr := s.end(); code != 0 {
		s.t.Fatalf("%s: exit %d, want 0\n%s", s.name, code, stderr)
	}
}

// kill ends grpcurl (the client goes away: its RPC is cancelled) and waits
// for it.
func (s *gcStream) kill() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	for range s.msgs {
	}
	<-s.done
}

// gcLeaseRE matches a lease ID.
var gcLeaseRE = regexp.MustCompile(`^[0-9a-f]{32}$`)
