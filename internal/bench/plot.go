package bench

import (
	"fmt"
	"image/color"
	"os"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Plot writes a PNG of throughput and p50/p99 latency against concurrency,
// one line per series of points.
func Plot(points []Point, file string) error {
	series := map[string][]Point{}
	var names []string
	for _, p := range points {
		if _, ok := series[p.Series]; !ok {
			names = append(names, p.Series)
		}
		series[p.Series] = append(series[p.Series], p)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return fmt.Errorf("bench: nothing to plot")
	}
	tp := plot.New()
	tp.Title.Text = "Throughput against concurrency"
	tp.X.Label.Text = "concurrent callers"
	tp.Y.Label.Text = "operations per second"
	tp.X.Scale, tp.X.Tick.Marker = plot.LogScale{}, plot.LogTicks{}
	tp.Legend.Top, tp.Legend.Left = true, true
	lp := plot.New()
	lp.Title.Text = "Latency against concurrency (solid p50, dashed p99)"
	lp.X.Label.Text = "concurrent callers"
	lp.Y.Label.Text = "milliseconds"
	lp.X.Scale, lp.X.Tick.Marker = plot.LogScale{}, plot.LogTicks{}
	lp.Y.Scale, lp.Y.Tick.Marker = plot.LogScale{}, plot.LogTicks{}
	lp.Legend.Top, lp.Legend.Left = true, true
	for i, name := range names {
		ps := series[name]
		sort.Slice(ps, func(a, b int) bool { return ps[a].Concurrency < ps[b].Concurrency })
		thr, p50, p99 := make(plotter.XYs, len(ps)), make(plotter.XYs, len(ps)), make(plotter.XYs, len(ps))
		for j, p := range ps {
			x := float64(p.Concurrency)
			thr[j] = plotter.XY{X: x, Y: p.Throughput}
			p50[j] = plotter.XY{X: x, Y: max(p.P50, 0.001)}
			p99[j] = plotter.XY{X: x, Y: max(p.P99, 0.001)}
		}
		c := plotutil.Color(i)
		if err := addLine(tp, thr, name, c, false); err != nil {
			return err
		}
		if err := addLine(lp, p50, name, c, false); err != nil {
			return err
		}
		if err := addLine(lp, p99, "", c, true); err != nil {
			return err
		}
	}
	const w, h = 10 * vg.Inch, 5 * vg.Inch
	img := vgimg.New(2*w, h)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Millimeter * 4, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align([][]*plot.Plot{{tp, lp}}, tiles, dc)
	tp.Draw(canvases[0][0])
	lp.Draw(canvases[0][1])
	return saveImage(img, file)
}

func addLine(p *plot.Plot, xys plotter.XYs, name string, c color.Color, dashed bool) error {
	l, pts, err := plotter.NewLinePoints(xys)
	if err != nil {
		return err
	}
	l.Color, pts.Color = c, c
	l.Width = vg.Points(1.5)
	if dashed {
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	}
	p.Add(l, pts)
	if name != "" {
		p.Legend.Add(name, l, pts)
	}
	return nil
}

func saveImage(img *vgimg.Canvas, file string) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
