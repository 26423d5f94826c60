package httpgw

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"connectrpc.com/connect"
)

// Server streams on REST paths, as newline-delimited JSON: each message of
// the stream is one line of JSON, and a stream that ends with an error
// ends with a line {"error": {"code": N, "message": ...}} (a
// google.rpc.Status). A call refused before its first message gets the
// REST error answer instead (its HTTP status, a JSON body). curl -N shows
// it as it comes; PHP reads it line by line. (vanguard serves server
// streams over the Connect protocol only, so each such request is made a
// Connect call to the same transcoder, in process, and its frames are
// rewritten as lines: nothing else differs, the interceptors included.)
var streams = []streamRoute{
	{"GET", "/v1/groups/{group}:watch", "zkcoord.v1.RegistryService/WatchGroup"},
	{"POST", "/v1/elections/{election}:campaign", "zkcoord.v1.ElectionService/Campaign"},
	{"GET", "/v1/elections/{election}:observe", "zkcoord.v1.ElectionService/Observe"},
	{"POST", "/v1/barriers/{barrier}:await", "zkcoord.v1.BarrierService/AwaitBarrier"},
	{"GET", "/v1/groups/{group}:await", "zkcoord.v1.BarrierService/AwaitGroup"},
	{"POST", "/v1/locks/{lock}:acquire", "zkcoord.v1.LockService/AcquireLock"},
	{"POST", "/v1/semaphores/{semaphore}:acquire", "zkcoord.v1.SemaphoreService/AcquireSemaphore"},
}

// streamRoute maps a REST path to a server-streaming procedure. The path's
// one variable, and the query parameters (GET) or the JSON body's fields
// (POST), make the request.
type streamRoute struct {
	method, path, procedure string
}

// StreamPaths lists the REST paths of server streams, for docs and tests.
func StreamPaths() []string {
	out := make([]string, len(streams))
	for i, s := range streams {
		out[i] = s.method + " " + s.path + " -> " + s.procedure
	}
	return out
}

// match returns the value of the route's variable in path, if it matches.
func (s streamRoute) match(method, path string) (string, bool) {
	if method != s.method {
		return "", false
	}
	pre, rest, _ := strings.Cut(s.path, "{")
	_, suf, _ := strings.Cut(rest, "}")
	if !strings.HasPrefix(path, pre) || !strings.HasSuffix(path, suf) || len(path) <= len(pre)+len(suf) {
		return "", false
	}
	v := path[len(pre) : len(path)-len(suf)]
	return v, !strings.Contains(v, "/")
}

func (s streamRoute) variable() string {
	_, rest, _ := strings.Cut(s.path, "{")
	v, _, _ := strings.Cut(rest, "}")
	return v
}

// ndjson serves the streams' REST paths through t, and everything else
// with next.
func ndjson(t, next http.Handler, max int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, s := range streams {
			v, ok := s.match(r.Method, r.URL.Path)
			if !ok {
				continue
			}
			req, err := s.request(r, v, max)
			if err != nil {
				writeError(w, http.StatusBadRequest, connect.CodeInvalidArgument, err.Error())
				return
			}
			s.serve(t, w, r, req)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// request builds the stream's request JSON from the path variable and the
// query (GET) or the body (POST).
func (s streamRoute) request(r *http.Request, v string, max int64) ([]byte, error) {
	fields := map[string]any{}
	if r.Method == http.MethodPost && r.ContentLength != 0 {
		body, err := io.ReadAll(io.LimitReader(r.Body, max+1))
		if err != nil {
			return nil, fmt.Errorf("reading the request body: %w", err)
		}
		if len(bytes.TrimSpace(body)) > 0 {
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.UseNumber()
			if err := dec.Decode(&fields); err != nil {
				return nil, fmt.Errorf("malformed JSON request body: %w", err)
			}
			if dec.More() {
				return nil, fmt.Errorf("malformed JSON request body: more than one value")
			}
			if fields == nil { // null decodes into a nil map
				return nil, fmt.Errorf("malformed JSON request body: null, want an object of the request's fields")
			}
		}
	}
	for k, vs := range r.URL.Query() {
		if len(vs) != 1 {
			return nil, fmt.Errorf("query parameter %q given %d times", k, len(vs))
		}
		fields[k] = vs[0]
	}
	name := s.variable()
	if _, dup := fields[name]; dup {
		return nil, fmt.Errorf("%s is in the path; do not repeat it", name)
	}
	fields[name] = v
	return json.Marshal(fields)
}

// serve makes the request a Connect call to t and writes its messages as
// lines to w.
func (s streamRoute) serve(t http.Handler, w http.ResponseWriter, r *http.Request, req []byte) {
	var env bytes.Buffer
	env.WriteByte(0)
	_ = binary.Write(&env, binary.BigEndian, uint32(len(req)))
	env.Write(req)
	in := r.Clone(r.Context())
	in.Method = http.MethodPost
	in.URL.Path, in.URL.RawPath, in.URL.RawQuery = "/"+s.procedure, "", ""
	in.RequestURI = in.URL.RequestURI()
	in.Body, in.ContentLength = io.NopCloser(&env), int64(env.Len())
	in.Header = r.Header.Clone()
	in.Header.Set("Content-Type", "application/connect+json")
	in.Header.Set("Connect-Protocol-Version", "1")
	in.Header.Del("Content-Length")
	lw := &lineWriter{w: w}
	t.ServeHTTP(lw, in)
	lw.finish()
}

// lineWriter receives a Connect stream's response and writes its frames to
// w as lines of JSON.
type lineWriter struct {
	w       http.ResponseWriter
	hdr     http.Header
	status  int
	buf     []byte
	started bool // the first line is written (the status with it)
	ended   bool
}

func (l *lineWriter) Header() http.Header {
	if l.hdr == nil {
		l.hdr = http.Header{}
	}
	return l.hdr
}

func (l *lineWriter) WriteHeader(code int) {
	if l.status == 0 {
		l.status = code
	}
}

func (l *lineWriter) Flush() {}

func (l *lineWriter) Write(p []byte) (int, error) {
	if l.status == 0 {
		l.status = http.StatusOK
	}
	if l.status != http.StatusOK { // refused before streaming: Connect's JSON error
		l.buf = append(l.buf, p...)
		return len(p), nil
	}
	l.buf = append(l.buf, p...)
	for len(l.buf) >= 5 {
		n := int(binary.BigEndian.Uint32(l.buf[1:5]))
		if len(l.buf) < 5+n {
			break
		}
		flags, msg := l.buf[0], l.buf[5:5+n]
		if err := l.frame(flags, msg); err != nil {
			return 0, err
		}
		l.buf = l.buf[5+n:]
	}
	return len(p), nil
}

// frame writes one message, or the end of the stream.
func (l *lineWriter) frame(flags byte, msg []byte) error {
	if flags&0x02 == 0 {
		l.start(http.StatusOK)
		if _, err := l.w.Write(append(append([]byte{}, msg...), '\n')); err != nil {
			return err
		}
		if f, ok := l.w.(http.Flusher); ok {
			f.Flush()
		}
		return nil
	}
	l.ended = true
	var end struct {
		Error *struct {
			Code    connect.Code     `json:"code"`
			Message string           `json:"message"`
			Details []map[string]any `json:"details"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg, &end); err != nil || end.Error == nil {
		l.start(http.StatusOK)
		return nil
	}
	status := map[string]any{"code": int(end.Error.Code), "message": end.Error.Message, "details": []any{}}
	if !l.started {
		l.w.Header().Set("Content-Type", "application/json")
		l.w.WriteHeader(httpStatus(end.Error.Code))
		l.started = true
		return json.NewEncoder(l.w).Encode(status)
	}
	return json.NewEncoder(l.w).Encode(map[string]any{"error": status})
}

// start writes the stream's headers once.
func (l *lineWriter) start(status int) {
	if l.started {
		return
	}
	l.started = true
	l.w.Header().Set("Content-Type", "application/x-ndjson")
	l.w.Header().Set("X-Content-Type-Options", "nosniff")
	l.w.WriteHeader(status)
	if f, ok := l.w.(http.Flusher); ok {
		f.Flush()
	}
}

// finish answers a call refused before streaming (a non-200 Connect
// answer: a JSON error with a string code) as REST does.
func (l *lineWriter) finish() {
	if l.started {
		return
	}
	if l.status != http.StatusOK && l.status != 0 {
		var e struct {
			Code    connect.Code `json:"code"`
			Message string       `json:"message"`
		}
		if json.Unmarshal(l.buf, &e) != nil {
			e.Code, e.Message = codeOf(l.status), strings.TrimSpace(string(l.buf))
		}
		writeError(l.w, httpStatus(e.Code), e.Code, e.Message)
		return
	}
	l.start(http.StatusOK) // an empty stream
}

// httpStatus is the HTTP status of a gRPC code, as google.rpc and the
// REST errors map it.
func httpStatus(c connect.Code) int {
	switch c {
	case connect.CodeCanceled:
		return 499
	case connect.CodeInvalidArgument, connect.CodeFailedPrecondition, connect.CodeOutOfRange:
		return http.StatusBadRequest
	case connect.CodeDeadlineExceeded:
		return http.StatusGatewayTimeout
	case connect.CodeNotFound:
		return http.StatusNotFound
	case connect.CodeAlreadyExists, connect.CodeAborted:
		return http.StatusConflict
	case connect.CodePermissionDenied:
		return http.StatusForbidden
	case connect.CodeResourceExhausted:
		return http.StatusTooManyRequests
	case connect.CodeUnimplemented:
		return http.StatusNotImplemented
	case connect.CodeUnavailable:
		return http.StatusServiceUnavailable
	case connect.CodeUnauthenticated:
		return http.StatusUnauthorized
	}
	return http.StatusInternalServerError
}
