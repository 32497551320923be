package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image/color"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// runPlot draws throughput and PlaceOrder->final p99 against offered load from the
// JSON reports of open-model runs (-rate ... -json), one PNG with two panels.
func runPlot(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("loadgen plot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "docs/loadgen-throughput.png", "PNG file to write")
	title := fs.String("title", "eventshop on 2 cores", "chart title")
	fs.Usage = func() { fmt.Fprintln(stderr, "usage: loadgen plot [-out file.png] report.json ...") }
	if err := fs.Parse(args); err != nil {
		return err
	}
	var reps []Report
	for _, f := range fs.Args() {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var r Report
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if r.OfferedRate <= 0 {
			return fmt.Errorf("%s: not an open-model run (-rate)", f)
		}
		reps = append(reps, r)
	}
	if len(reps) < 2 {
		return fmt.Errorf("plot: want at least 2 reports, got %d", len(reps))
	}
	slices.SortFunc(reps, func(a, b Report) int {
		switch {
		case a.OfferedRate < b.OfferedRate:
			return -1
		case a.OfferedRate > b.OfferedRate:
			return 1
		}
		return 0
	})
	thr, ideal, p99, place := make(plotter.XYs, len(reps)), make(plotter.XYs, len(reps)), make(plotter.XYs, len(reps)), make(plotter.XYs, len(reps))
	for i, r := range reps {
		thr[i] = plotter.XY{X: r.OfferedRate, Y: float64(r.Placed) / r.Seconds}
		ideal[i] = plotter.XY{X: r.OfferedRate, Y: r.OfferedRate}
		p99[i] = plotter.XY{X: r.OfferedRate, Y: r.OrderToFinal.P99}
		place[i] = plotter.XY{X: r.OfferedRate, Y: r.Ops[opPlaceOrder].P99}
	}

	top := plot.New()
	top.Title.Text = *title + ": throughput"
	top.X.Label.Text = "offered load (orders/s)"
	top.Y.Label.Text = "orders/s"
	if err := addLines(top, "achieved", thr, color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, "offered", ideal, color.RGBA{R: 0x99, G: 0x99, B: 0x99, A: 0xff}); err != nil {
		return err
	}
	bottom := plot.New()
	bottom.Title.Text = "p99 latency"
	bottom.X.Label.Text = "offered load (orders/s)"
	bottom.Y.Label.Text = "ms"
	if err := addLines(bottom, "PlaceOrder -> final", p99, color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}, "PlaceOrder call", place, color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}); err != nil {
		return err
	}

	return writePanels(*out, top, bottom)
}

// writePanels writes top above bottom as one PNG.
func writePanels(out string, top, bottom *plot.Plot) error {
	img := vgimg.New(8*vg.Inch, 8*vg.Inch)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadY: vg.Millimeter * 4, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 4}
	canvases := plot.Align([][]*plot.Plot{{top}, {bottom}}, tiles, dc)
	top.Draw(canvases[0][0])
	bottom.Draw(canvases[1][0])
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// runPlotBench draws sagas/s and p99 against buyers from two outputs of
// BenchmarkSagaEmbedded (go test -bench), before and after a change.
func runPlotBench(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("loadgen plot-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "docs/saga-sweep.png", "PNG file to write")
	title := fs.String("title", "order pipeline on 2 cores", "chart title")
	fs.Usage = func() { fmt.Fprintln(stderr, "usage: loadgen plot-bench [-out file.png] before.txt after.txt") }
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return errors.New("plot-bench: want the before and the after output")
	}
	var runs [2]map[float64]map[string]float64
	for i, f := range fs.Args() {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if runs[i] = parseSweep(string(b)); len(runs[i]) < 2 {
			return fmt.Errorf("%s: fewer than two buyers=N results of BenchmarkSagaEmbedded", f)
		}
	}
	series := func(run map[float64]map[string]float64, unit string) plotter.XYs {
		var xy plotter.XYs
		for _, buyers := range slices.Sorted(maps.Keys(run)) {
			xy = append(xy, plotter.XY{X: buyers, Y: run[buyers][unit]})
		}
		return xy
	}
	before, after := color.RGBA{R: 0x99, G: 0x99, B: 0x99, A: 0xff}, color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	top := plot.New()
	top.Title.Text = *title + ": completed orders/s"
	top.X.Label.Text = "buyers at once"
	top.Y.Label.Text = "sagas/s"
	top.Y.Min = 0
	top.X.Scale = plot.LogScale{}
	top.X.Tick.Marker = plot.LogTicks{Prec: -1}
	if err := addLines(top, "after", series(runs[1], "sagas/s"), after, "before", series(runs[0], "sagas/s"), before); err != nil {
		return err
	}
	bottom := plot.New()
	bottom.Title.Text = "p99 PlaceOrder -> COMPLETED"
	bottom.X.Label.Text = "buyers at once"
	bottom.Y.Label.Text = "ms (log)"
	bottom.X.Scale, bottom.Y.Scale = plot.LogScale{}, plot.LogScale{}
	bottom.X.Tick.Marker, bottom.Y.Tick.Marker = plot.LogTicks{Prec: -1}, plot.LogTicks{Prec: -1}
	if err := addLines(bottom, "after", series(runs[1], "p99-ms"), after, "before", series(runs[0], "p99-ms"), before); err != nil {
		return err
	}
	return writePanels(*out, top, bottom)
}

// parseSweep reads "BenchmarkSagaEmbedded/buyers=N-P  count  value unit ..." lines
// into buyers -> unit -> value.
func parseSweep(out string) map[float64]map[string]float64 {
	runs := map[float64]map[string]float64{}
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "BenchmarkSagaEmbedded/buyers=") {
			continue
		}
		n, _, _ := strings.Cut(strings.TrimPrefix(f[0], "BenchmarkSagaEmbedded/buyers="), "-")
		buyers, err := strconv.ParseFloat(n, 64)
		if err != nil {
			continue
		}
		m := map[string]float64{}
		for i := 2; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				m[f[i+1]] = v
			}
		}
		runs[buyers] = m
	}
	return runs
}

func addLines(p *plot.Plot, name1 string, xy1 plotter.XYs, c1 color.Color, name2 string, xy2 plotter.XYs, c2 color.Color) error {
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Legend.Left = true
	for _, l := range []struct {
		name string
		xy   plotter.XYs
		c    color.Color
	}{{name1, xy1, c1}, {name2, xy2, c2}} {
		line, points, err := plotter.NewLinePoints(l.xy)
		if err != nil {
			return err
		}
		line.Color, points.Color = l.c, l.c
		p.Add(line, points)
		p.Legend.Add(l.name, line, points)
	}
	return nil
}
