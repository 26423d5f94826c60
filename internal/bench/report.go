package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// Better says which way a figure improves.
type Better int

const (
	Higher Better = iota // throughput
	Lower                // latency, memory
)

// Figure is one measured quantity of the gateway, with its direct
// counterpart when there is one, and its target.
type Figure struct {
	Workload string  `json:"workload"`
	Name     string  `json:"name"`
	Unit     string  `json:"unit"`
	Gateway  float64 `json:"gateway"`
	// Direct is the same work done with go-zookeeper; NaN when there is no
	// counterpart.
	Direct float64 `json:"direct"`
	// Etcd is the same work done against etcd with clientv3; NaN when
	// there is no counterpart (or no etcd in the run).
	Etcd   float64 `json:"etcd"`
	Better Better  `json:"better"`
	// Target is what the figure must meet, in words (against direct
	// ZooKeeper or absolute); Met whether it does. EtcdTarget and EtcdMet
	// are the same against etcd. A figure without a target is context.
	Target     string `json:"target,omitempty"`
	Met        bool   `json:"met"`
	EtcdTarget string `json:"etcd_target,omitempty"`
	EtcdMet    bool   `json:"etcd_met"`
	Note       string `json:"note,omitempty"`
}

// RatioEtcd is gateway / etcd, NaN without an etcd figure.
func (f Figure) RatioEtcd() float64 {
	if math.IsNaN(f.Etcd) || f.Etcd == 0 {
		return math.NaN()
	}
	return f.Gateway / f.Etcd
}

// withEtcd returns f with its etcd counterpart.
func (f Figure) withEtcd(v float64) Figure {
	f.Etcd = v
	return f
}

// etcdBound returns f with etcd counterpart v and a target against it: a
// ratio of at least bound (Higher) or at most bound (Lower). Without an
// etcd figure (NaN: no etcd in the run) there is no target.
func (f Figure) etcdBound(v, bound float64) Figure {
	f.Etcd = v
	if math.IsNaN(v) {
		return f
	}
	if f.Better == Higher {
		f.EtcdTarget = fmt.Sprintf(">= %.2gx etcd", bound)
		f.EtcdMet = f.RatioEtcd() >= bound
	} else {
		f.EtcdTarget = fmt.Sprintf("<= %.2gx etcd", bound)
		f.EtcdMet = f.RatioEtcd() <= bound
	}
	return f
}

// HasTarget says whether f has a target, against direct, absolute or
// against etcd.
func (f Figure) HasTarget() bool { return f.Target != "" || f.EtcdTarget != "" }

// Missed says whether f misses any of its targets.
func (f Figure) Missed() bool {
	return (f.Target != "" && !f.Met) || (f.EtcdTarget != "" && !f.EtcdMet)
}

// Ratio is gateway / direct, NaN without a direct figure.
func (f Figure) Ratio() float64 {
	if math.IsNaN(f.Direct) || f.Direct == 0 {
		return math.NaN()
	}
	return f.Gateway / f.Direct
}

func (f Figure) verdict() string {
	switch {
	case !f.HasTarget():
		return ""
	case !f.Missed():
		return "met"
	case f.Target != "" && f.EtcdTarget != "" && f.Met:
		return "MISSED (etcd)"
	case f.Target != "" && f.EtcdTarget != "" && f.EtcdMet:
		return "MISSED (direct)"
	default:
		return "MISSED"
	}
}

// targets is the target column: the direct or absolute target and the
// etcd one.
func (f Figure) targets() string {
	switch {
	case f.Target != "" && f.EtcdTarget != "":
		return f.Target + "; " + f.EtcdTarget
	case f.Target != "":
		return f.Target
	default:
		return f.EtcdTarget
	}
}

// ms converts a duration to milliseconds as a float.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// ratioFigure builds a figure whose target is a ratio to direct: at least
// min (Higher) or at most max (Lower).
func ratioFigure(workload, name, unit string, gw, direct float64, better Better, bound float64) Figure {
	return boundFigure(workload, name, unit, gw, direct, better, bound, "direct")
}

// boundFigure builds a figure whose target is a ratio to the figure in its
// direct column, which is what against names: at least bound (Higher) or
// at most bound (Lower).
func boundFigure(workload, name, unit string, gw, direct float64, better Better, bound float64, against string) Figure {
	f := info(workload, name, unit, gw, direct, better)
	if better == Higher {
		f.Target = fmt.Sprintf(">= %.2gx %s", bound, against)
		f.Met = f.Ratio() >= bound
	} else {
		f.Target = fmt.Sprintf("<= %.2gx %s", bound, against)
		f.Met = f.Ratio() <= bound
	}
	return f
}

// absFigure builds a figure with an absolute bound.
func absFigure(workload, name, unit string, gw, direct float64, better Better, bound float64) Figure {
	f := info(workload, name, unit, gw, direct, better)
	if better == Higher {
		f.Target = fmt.Sprintf(">= %s %s", num(bound), unit)
		f.Met = gw >= bound
	} else {
		f.Target = fmt.Sprintf("<= %s %s", num(bound), unit)
		f.Met = gw <= bound
	}
	return f
}

// info builds a figure without a target (and without an etcd figure:
// withEtcd or etcdBound adds one).
func info(workload, name, unit string, gw, direct float64, better Better) Figure {
	return Figure{Workload: workload, Name: name, Unit: unit, Gateway: gw, Direct: direct, Etcd: math.NaN(), Better: better}
}

func num(v float64) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func ratioText(r float64) string {
	if math.IsNaN(r) {
		return "-"
	}
	return fmt.Sprintf("%.2fx", r)
}

// WriteTable prints figures as an aligned text table.
func WriteTable(w io.Writer, figs []Figure) {
	rows := [][]string{{"workload", "figure", "zkcoord", "direct", "etcd", "vs direct", "vs etcd", "target", ""}}
	for _, f := range figs {
		rows = append(rows, []string{f.Workload, f.Name, num(f.Gateway) + " " + f.Unit, withUnit(f.Direct, f.Unit), withUnit(f.Etcd, f.Unit),
			ratioText(f.Ratio()), ratioText(f.RatioEtcd()), f.targets(), f.verdict()})
	}
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], len(c))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		for i, c := range r {
			fmt.Fprintf(&b, "%-*s  ", widths[i], c)
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

func withUnit(v float64, unit string) string {
	if math.IsNaN(v) {
		return "-"
	}
	return num(v) + " " + unit
}

// WriteMarkdown prints figures as a Markdown table.
func WriteMarkdown(w io.Writer, figs []Figure) {
	fmt.Fprintln(w, "| workload | figure | zkcoord | direct | etcd | vs direct | vs etcd | target | |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---|---|")
	for _, f := range figs {
		fmt.Fprintf(w, "| %s | %s | %s %s | %s | %s | %s | %s | %s | %s |\n", f.Workload, f.Name, num(f.Gateway), f.Unit,
			withUnit(f.Direct, f.Unit), withUnit(f.Etcd, f.Unit), ratioText(f.Ratio()), ratioText(f.RatioEtcd()), f.targets(), f.verdict())
	}
}

// WriteJSON writes figures as JSON (NaN as null).
func WriteJSON(w io.Writer, figs []Figure) error {
	type jf struct {
		Figure
		Direct    *float64 `json:"direct"`
		Ratio     *float64 `json:"ratio"`
		Etcd      *float64 `json:"etcd"`
		RatioEtcd *float64 `json:"ratio_etcd"`
	}
	opt := func(v float64) *float64 {
		if math.IsNaN(v) {
			return nil
		}
		return &v
	}
	out := make([]jf, 0, len(figs))
	for _, f := range figs {
		out = append(out, jf{Figure: f, Direct: opt(f.Direct), Ratio: opt(f.Ratio()), Etcd: opt(f.Etcd), RatioEtcd: opt(f.RatioEtcd())})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
