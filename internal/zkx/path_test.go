package zkx_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/zkx"
)

func TestCheckNameAndPath(t *testing.T) {
	for name, ok := range map[string]bool{
		"gw-a": true, "host-1234": true, "é": true, "a.b": true,
		"": false, ".": false, "..": false, "a/b": false, "a\x00b": false, "a\nb": false, "a\u0085b": false,
	} {
		if err := zkx.CheckName(name); (err == nil) != ok {
			t.Errorf("CheckName(%q) = %v, want ok %v", name, err, ok)
		}
	}
	for p, ok := range map[string]bool{
		"/zkcoord": true, "/prod/coord": true,
		"": false, "/": false, "zkcoord": false, "/zkcoord/": false, "//zkcoord": false,
		"/a/./b": false, "/a/../b": false, "/a\x00": false,
	} {
		if err := zkx.CheckPath(p); (err == nil) != ok {
			t.Errorf("CheckPath(%q) = %v, want ok %v", p, err, ok)
		}
	}
}

// TestDialRefusesBadOptions: Dial returns an option's error before it
// connects (the address is one nothing listens on: a Dial that tried
// would wait out ctx instead).
func TestDialRefusesBadOptions(t *testing.T) {
	for name, opt := range map[string]zkx.Option{
		"zero session timeout":     zkx.WithSessionTimeout(0),
		"negative session timeout": zkx.WithSessionTimeout(-time.Second),
		"nil TLS config":           zkx.WithTLS(nil),
		"nil logger":               zkx.WithLogger(nil),
		"empty digest user":        zkx.WithDigest("", "pw"),
		"digest user with a colon": zkx.WithDigest("a:b", "pw"),
		"no write pipeline":        zkx.WithWritePipeline(0),
		"write pipeline too deep":  zkx.WithWritePipeline(65),
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			sess, err := zkx.Dial(ctx, "127.0.0.1:1", opt)
			if err == nil {
				sess.Close()
				t.Fatal("Dial accepted the option")
			}
			if !strings.HasPrefix(err.Error(), "zkx: ") || ctx.Err() != nil {
				t.Fatalf("Dial: %v (ctx: %v), want the option's error at once", err, ctx.Err())
			}
		})
	}
}
