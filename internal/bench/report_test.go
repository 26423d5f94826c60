package bench

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
)

// TestVerdicts: a figure with targets against direct and against etcd
// is met only when both are, and says which it missed.
func TestVerdicts(t *testing.T) {
	for _, c := range []struct {
		name      string
		f         Figure
		want      string
		hasTarget bool
	}{
		{"no target", info("w", "f", "ms", 1, 2, Lower).withEtcd(3), "", false},
		{"both met", ratioFigure("w", "f", "ops/s", 10, 10, Higher, 0.7).etcdBound(10, 1), "met", true},
		{"etcd missed", ratioFigure("w", "f", "ops/s", 10, 10, Higher, 0.7).etcdBound(11, 1), "MISSED (etcd)", true},
		{"direct missed", ratioFigure("w", "f", "ops/s", 5, 10, Higher, 0.7).etcdBound(5, 1), "MISSED (direct)", true},
		{"both missed", ratioFigure("w", "f", "ops/s", 5, 10, Higher, 0.7).etcdBound(6, 1), "MISSED", true},
		{"etcd only, lower, met", info("w", "f", "ms", 1.5, 9, Lower).etcdBound(1, 1.5), "met", true},
		{"etcd only, lower, missed", info("w", "f", "ms", 1.6, 9, Lower).etcdBound(1, 1.5), "MISSED", true},
		// The HTTP/JSON face against its own gRPC face (the direct column).
		{"gRPC bound met", grpcBound("w", "f", "ops/s", 5, 10, Higher, 0.5), "met", true},
		{"gRPC bound missed", grpcBound("w", "f", "ops/s", 4.9, 10, Higher, 0.5), "MISSED", true},
		{"gRPC bound, lower, missed", grpcBound("w", "f", "ms", 2.1, 1, Lower, 2), "MISSED", true},
		// No etcd in the run: no etcd target, nothing missed for it.
		{"no etcd", info("w", "f", "ms", 3, 1, Lower).etcdBound(math.NaN(), 1), "", false},
	} {
		if got := c.f.verdict(); got != c.want || c.f.HasTarget() != c.hasTarget || c.f.Missed() != strings.HasPrefix(c.want, "MISSED") {
			t.Errorf("%s: verdict %q, HasTarget %v, Missed %v; want %q, %v", c.name, got, c.f.HasTarget(), c.f.Missed(), c.want, c.hasTarget)
		}
	}
}

// TestReportColumns: the table, Markdown and JSON carry the etcd figure
// and both ratios, and "-" (null in JSON) where there is none.
func TestReportColumns(t *testing.T) {
	figs := []Figure{
		ratioFigure("Register+Deregister", "pairs/s", "ops/s", 3000, 6000, Higher, 0.7).etcdBound(1500, 1),
		info("KeepAlive", "writes", "writes", 0, math.NaN(), Lower),
	}
	var md bytes.Buffer
	WriteMarkdown(&md, figs)
	for _, want := range []string{
		"| workload | figure | zkcoord | direct | etcd | vs direct | vs etcd | target | |",
		"| Register+Deregister | pairs/s | 3000 ops/s | 6000 ops/s | 1500 ops/s | 0.50x | 2.00x | >= 0.7x direct; >= 1x etcd | MISSED (direct) |",
		"| KeepAlive | writes | 0 writes | - | - | - | - |  |  |",
	} {
		if !strings.Contains(md.String(), want+"\n") {
			t.Errorf("Markdown lacks %q:\n%s", want, md.String())
		}
	}
	var table bytes.Buffer
	WriteTable(&table, figs)
	if lines := strings.Split(table.String(), "\n"); !strings.Contains(lines[0], "vs etcd") || !strings.Contains(lines[1], "2.00x") {
		t.Errorf("table:\n%s", table.String())
	}
	var js bytes.Buffer
	if err := WriteJSON(&js, figs); err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	if err := json.Unmarshal(js.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if out[0]["etcd"] != 1500.0 || out[0]["ratio_etcd"] != 2.0 || out[0]["etcd_target"] != ">= 1x etcd" || out[0]["etcd_met"] != true {
		t.Errorf("JSON of a figure with etcd: %v", out[0])
	}
	if out[1]["etcd"] != nil || out[1]["ratio_etcd"] != nil || out[1]["direct"] != nil {
		t.Errorf("JSON of a figure without etcd: %v, want nulls", out[1])
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{[]float64{3, 1, 2}, 2}, {[]float64{100, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}, {[]float64{7}, 7}} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median of nothing is not NaN")
	}
}
