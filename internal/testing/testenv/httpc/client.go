// Package httpc is a small client of zkcoord's HTTP face for tests:
// REST calls with JSON, and Connect-protocol server streams read frame by
// frame (a 1-byte flag, a 4-byte big-endian length, a JSON message; the
// end-of-stream frame has flag 0x02 and holds the error, if any), as a
// client in any language would read them.
package httpc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Client calls one gateway's HTTP face.
type Client struct {
	Base  string       // "http://127.0.0.1:7071"
	Token string       // bearer token, "" for none
	HTTP  *http.Client // nil: http.DefaultClient
}

// Response is a REST answer: its status and decoded JSON body (nil when the
// body is not JSON; Raw holds it).
type Response struct {
	Status int
	Body   map[string]any
	Raw    []byte
	Header http.Header
}

// Code is the gRPC code of an error answer (0 for success).
func (r Response) Code() int {
	c, _ := r.Body["code"].(float64)
	return int(c)
}

// Message is the message of an error answer.
func (r Response) Message() string {
	m, _ := r.Body["message"].(string)
	return m
}

// String returns the body as a string, for messages.
func (r Response) String() string { return fmt.Sprintf("%d %s", r.Status, bytes.TrimSpace(r.Raw)) }

func (c Client) client() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// Do sends method path with body (nil: none; a string or []byte is sent
// as is, anything else as JSON) and Content-Type application/json.
func (c Client) Do(ctx context.Context, method, path string, body any) (Response, error) {
	return c.DoType(ctx, method, path, "application/json", body)
}

// DoType is Do with another Content-Type ("" for none).
func (c Client) DoType(ctx context.Context, method, path, contentType string, body any) (Response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return Response{}, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, rd)
	if err != nil {
		return Response{}, err
	}
	if rd != nil && contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.client().Do(req)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return Response{}, err
	}
	out := Response{Status: resp.StatusCode, Raw: raw, Header: resp.Header}
	_ = json.Unmarshal(raw, &out.Body)
	return out, nil
}

// Stream is an open Connect server stream.
type Stream struct {
	body io.ReadCloser
	rd   *bufio.Reader
	// Err is the stream's end: nil for a clean end, else the error the
	// end-of-stream frame carried (a *StreamError), or a transport error.
	Err error
}

// StreamError is an error the gateway ended a stream with.
type StreamError struct {
	Code    string // the Connect code name, e.g. "unavailable"
	Message string
}

func (e *StreamError) Error() string { return e.Code + ": " + e.Message }

// ErrEnd is what Next returns after the end-of-stream frame.
var ErrEnd = errors.New("httpc: end of stream")

// Open starts a server-streaming call of procedure ("zkcoord.v1.Registry
// Service/WatchGroup") with req as JSON, over HTTP/1.1 with the Connect
// protocol. It fails unless the gateway answers 200.
func (c Client) Open(ctx context.Context, procedure string, req any) (*Stream, error) {
	data, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	var env bytes.Buffer
	env.WriteByte(0)
	_ = binary.Write(&env, binary.BigEndian, uint32(len(data)))
	env.Write(data)
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Base+"/"+procedure, &env)
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Content-Type", "application/connect+json")
	hreq.Header.Set("Connect-Protocol-Version", "1")
	if c.Token != "" {
		hreq.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.client().Do(hreq)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return nil, fmt.Errorf("httpc: %s: %s %s", procedure, resp.Status, raw)
	}
	return &Stream{body: resp.Body, rd: bufio.NewReader(resp.Body)}, nil
}

// Next returns the next message of the stream, ErrEnd after its last (with
// s.Err set to how it ended), or a transport error.
func (s *Stream) Next() (map[string]any, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(s.rd, hdr[:]); err != nil {
		s.Err = err
		return nil, err
	}
	data := make([]byte, binary.BigEndian.Uint32(hdr[1:]))
	if _, err := io.ReadFull(s.rd, data); err != nil {
		s.Err = err
		return nil, err
	}
	var msg map[string]any
	if err := json.Unmarshal(data, &msg); err != nil {
		s.Err = err
		return nil, err
	}
	if hdr[0]&0x02 != 0 { // end of stream
		if e, ok := msg["error"].(map[string]any); ok {
			code, _ := e["code"].(string)
			m, _ := e["message"].(string)
			s.Err = &StreamError{Code: code, Message: m}
		}
		return nil, ErrEnd
	}
	return msg, nil
}

// Close drops the stream, as a client that goes away does.
func (s *Stream) Close() error { return s.body.Close() }

// Lines is an open newline-delimited JSON stream (a REST stream path).
type Lines struct {
	body io.ReadCloser
	sc   *bufio.Scanner
}

// OpenLines starts a stream on a REST path (GET with the query in path, or
// POST with body as JSON). A call refused before its first message is
// returned as a Response with its error, and a nil stream.
func (c Client) OpenLines(ctx context.Context, method, path string, body any) (*Lines, Response, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, Response{}, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, rd)
	if err != nil {
		return nil, Response{}, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.client().Do(req)
	if err != nil {
		return nil, Response{}, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		out := Response{Status: resp.StatusCode, Raw: raw, Header: resp.Header}
		_ = json.Unmarshal(raw, &out.Body)
		return nil, out, nil
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	return &Lines{body: resp.Body, sc: sc}, Response{Status: resp.StatusCode, Header: resp.Header}, nil
}

// Next returns the next line, decoded; io.EOF at the end of the stream.
func (l *Lines) Next() (map[string]any, error) {
	if !l.sc.Scan() {
		if err := l.sc.Err(); err != nil {
			return nil, err
		}
		return nil, io.EOF
	}
	var m map[string]any
	if err := json.Unmarshal(l.sc.Bytes(), &m); err != nil {
		return nil, fmt.Errorf("httpc: line %q: %w", l.sc.Bytes(), err)
	}
	return m, nil
}

// Close drops the stream.
func (l *Lines) Close() error { return l.body.Close() }
