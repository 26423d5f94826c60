// Package console serves zkcoord's web console: a page of plain HTML, CSS
// and JavaScript, embedded in the binary, that reads the gateway's
// HTTP/JSON face (GET /v1/groups, /v1/elections, ..., /v1/status, and the
// NDJSON streams for live updates) with the caller's bearer token. The
// files are static and public; every piece of data comes from the API, so
// authentication and authorization apply to the console exactly as to any
// other HTTP client. docs/CONSOLE.md describes it and says why there is no
// framework.
package console

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed static
var static embed.FS

// Prefix is the path the console is served under.
const Prefix = "/console/"

// CSP is the Content-Security-Policy of every console file: scripts,
// styles, images and API calls from the console's own origin only; no
// inline script or style, no frames, no plugins, no form posts elsewhere.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Handler serves the console's files under Prefix (GET and HEAD only),
// each with CSP and headers that keep it from being framed or sniffed.
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree always has static/
	}
	files := http.StripPrefix(Prefix, http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}

// Mount returns a handler that serves the console under Prefix (and
// redirects /console to it) and everything else with api.
func Mount(api http.Handler) http.Handler {
	files := Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == strings.TrimSuffix(Prefix, "/"):
			http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
		case strings.HasPrefix(r.URL.Path, Prefix):
			files.ServeHTTP(w, r)
		default:
			api.ServeHTTP(w, r) // untouched: the API's own path checks apply
		}
	})
}
