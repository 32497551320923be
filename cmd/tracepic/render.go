package main

import (
	"cmp"
	"fmt"
	"image/color"
	"io"
	"math"
	"slices"
	"time"

	xfont "golang.org/x/image/font"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Geometry of the picture, in pixels (the canvas is drawn at 72 dpi, so one
// point is one pixel).
const (
	rowHeight    = 22
	headerHeight = 92
	footerHeight = 30
	margin       = 14
	indentStep   = 10
	minLabelCol  = 260
)

// Row is one line of the waterfall: a span and how deep it sits in the tree.
type Row struct {
	Span
	Depth  int
	Parent int  // index of the parent's row, -1 for a root
	Hop    bool // the parent is a producer and this span consumes its message (a NATS hop)
}

// Layout orders a trace's spans depth first, children by start time, as a waterfall
// shows them. A span whose parent is not in the trace is a root. Every span gets
// exactly one row.
func Layout(tr Trace) []Row {
	byID := make(map[string]Span, len(tr.Spans))
	for _, s := range tr.Spans {
		byID[s.SpanID] = s
	}
	children := make(map[string][]Span)
	var roots []Span
	for _, s := range tr.Spans {
		if p := s.Parent(); p != "" && p != s.SpanID {
			if _, ok := byID[p]; ok {
				children[p] = append(children[p], s)
				continue
			}
		}
		roots = append(roots, s)
	}
	byStart := func(a, b Span) int {
		return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.SpanID, b.SpanID))
	}
	slices.SortFunc(roots, byStart)
	rows := make([]Row, 0, len(tr.Spans))
	seen := make(map[string]bool, len(tr.Spans))
	var walk func(s Span, depth, parent int)
	walk = func(s Span, depth, parent int) {
		if seen[s.SpanID] { // a reference cycle in a corrupt trace; draw each span once
			return
		}
		seen[s.SpanID] = true
		hop := parent >= 0 && rows[parent].Kind == "producer" && s.Kind == "consumer"
		rows = append(rows, Row{Span: s, Depth: depth, Parent: parent, Hop: hop})
		me := len(rows) - 1
		kids := children[s.SpanID]
		slices.SortFunc(kids, byStart)
		for _, k := range kids {
			walk(k, depth+1, me)
		}
	}
	for _, r := range roots {
		walk(r, 0, -1)
	}
	// Spans only reachable through a cycle still get their row.
	for _, s := range tr.Spans {
		if !seen[s.SpanID] {
			walk(s, 0, -1)
		}
	}
	return rows
}

// ImageHeight is the height in pixels of the picture of a trace of n spans.
func ImageHeight(n int) int { return headerHeight + n*rowHeight + footerHeight }

// RenderOptions sizes and titles the picture.
type RenderOptions struct {
	Width int    // pixels; 1400 when 0
	Title string // first line; "trace <id>" when empty
}

// Render draws tr as a waterfall PNG on w: one row per span, indented by depth, a
// bar from its start to its end on a shared time axis, one colour per service, and
// an arrow for each message a producer span hands to a consumer span (a NATS hop).
// It returns an error for an empty trace, or the PNG encoder's or w's error.
func Render(w io.Writer, tr Trace, opts RenderOptions) error {
	if len(tr.Spans) == 0 {
		return fmt.Errorf("render trace %s: %w", tr.TraceID, ErrNoTrace)
	}
	width := cmp.Or(opts.Width, 1400)
	rows := Layout(tr)
	height := ImageHeight(len(rows))
	img := vgimg.NewWith(vgimg.UseWH(vg.Length(width), vg.Length(height)), vgimg.UseDPI(72),
		vgimg.UseBackgroundColor(color.White))
	p := newPainter(draw.New(img), float64(width), float64(height))
	p.draw(tr, rows, cmp.Or(opts.Title, "trace "+tr.TraceID))
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(w); err != nil {
		return fmt.Errorf("render trace %s: %w", tr.TraceID, err)
	}
	return nil
}

var (
	ink      = color.RGBA{0x22, 0x22, 0x22, 0xff}
	faint    = color.RGBA{0x77, 0x77, 0x77, 0xff}
	gridLine = color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
	stripe   = color.RGBA{0xf5, 0xf6, 0xf8, 0xff}
	hopInk   = color.RGBA{0x44, 0x44, 0x55, 0xff}
	errInk   = color.RGBA{0xd0, 0x10, 0x10, 0xff}
	// One colour per service, in order of first appearance; the shop's six services
	// and the gateway fit without reuse.
	palette = []color.RGBA{
		{0x1f, 0x77, 0xb4, 0xff}, {0xff, 0x7f, 0x0e, 0xff}, {0x2c, 0xa0, 0x2c, 0xff},
		{0x94, 0x67, 0xbd, 0xff}, {0x8c, 0x56, 0x4b, 0xff}, {0xe3, 0x77, 0xc2, 0xff},
		{0x17, 0xbe, 0xcf, 0xff}, {0xbc, 0xbd, 0x22, 0xff}, {0x7f, 0x7f, 0x7f, 0xff},
	}
)

// painter draws in pixel coordinates with y growing downwards, as a reader thinks
// of the rows, over gonum's canvas whose y grows upwards.
type painter struct {
	c    draw.Canvas
	w, h float64
}

func newPainter(c draw.Canvas, w, h float64) *painter { return &painter{c: c, w: w, h: h} }

func (p *painter) pt(x, y float64) vg.Point { return vg.Point{X: vg.Length(x), Y: vg.Length(p.h - y)} }

func (p *painter) style(size float64, bold bool, clr color.Color) draw.TextStyle {
	f := font.Font{Typeface: "Liberation", Variant: "Sans", Size: font.Length(size)}
	if bold {
		f.Weight = xfont.WeightBold
	}
	return draw.TextStyle{Color: clr, Font: f, Handler: plot.DefaultTextHandler, YAlign: draw.YCenter}
}

func (p *painter) textWidth(sty draw.TextStyle, s string) float64 { return float64(sty.Width(s)) }

// text draws s with its left edge at x and its vertical centre at y, returning its width.
func (p *painter) text(sty draw.TextStyle, x, y float64, s string) float64 {
	p.c.FillText(sty, p.pt(x, y), s)
	return p.textWidth(sty, s)
}

func (p *painter) rect(clr color.Color, x0, y0, x1, y1 float64) {
	p.c.FillPolygon(clr, []vg.Point{p.pt(x0, y0), p.pt(x1, y0), p.pt(x1, y1), p.pt(x0, y1)})
}

func (p *painter) line(clr color.Color, width float64, dashed bool, pts ...[2]float64) {
	sty := draw.LineStyle{Color: clr, Width: vg.Length(width)}
	if dashed {
		sty.Dashes = []vg.Length{4, 3}
	}
	vp := make([]vg.Point, len(pts))
	for i, q := range pts {
		vp[i] = p.pt(q[0], q[1])
	}
	p.c.StrokeLines(sty, vp)
}

// arrowhead draws a small filled triangle pointing right with its tip at (x, y).
func (p *painter) arrowhead(clr color.Color, x, y float64) {
	p.c.FillPolygon(clr, []vg.Point{p.pt(x, y), p.pt(x-6, y-3.5), p.pt(x-6, y+3.5)})
}

func (p *painter) draw(tr Trace, rows []Row, title string) {
	colours := map[string]color.RGBA{}
	var services []string
	for _, r := range rows {
		if _, ok := colours[r.Service]; !ok {
			colours[r.Service] = palette[len(services)%len(palette)]
			services = append(services, r.Service)
		}
	}
	t0, t1 := rows[0].Start, rows[0].Start.Add(rows[0].Duration)
	hops := 0
	for _, r := range rows {
		if r.Start.Before(t0) {
			t0 = r.Start
		}
		if e := r.Start.Add(r.Duration); e.After(t1) {
			t1 = e
		}
		if r.Hop {
			hops++
		}
	}
	total := max(t1.Sub(t0), time.Microsecond)

	// Title and legend.
	titleSty, small, label := p.style(16, true, ink), p.style(11, false, faint), p.style(12, false, ink)
	p.text(titleSty, margin, 18, title)
	p.text(small, margin, 38, fmt.Sprintf("trace %s · %d spans · %d services · %d NATS hops · %s end to end",
		tr.TraceID, len(rows), len(services), hops, fmtDur(total)))
	x := float64(margin)
	for _, s := range services {
		p.rect(colours[s], x, 52, x+12, 64)
		x += 16 + p.text(label, x+16, 58, s) + 14
	}
	p.line(hopInk, 1.2, true, [2]float64{x, 58}, [2]float64{x + 26, 58})
	p.arrowhead(hopInk, x+30, 58)
	x += 36 + p.text(label, x+36, 58, "message over NATS (producer → consumer)") + 14
	p.rect(color.White, x, 52, x+12, 64)
	p.line(errInk, 2, false, [2]float64{x, 52}, [2]float64{x + 12, 52}, [2]float64{x + 12, 64}, [2]float64{x, 64}, [2]float64{x, 52})
	p.text(label, x+16, 58, "error")

	// Columns: indented labels on the left, the time axis on the right.
	labelOf := func(r Row) (svc, name string) { return r.Service + ": ", r.Name }
	svcSty := p.style(12, true, ink)
	labelCol := float64(minLabelCol)
	for _, r := range rows {
		svc, name := labelOf(r)
		need := margin + float64(r.Depth*indentStep) + 14 + p.textWidth(svcSty, svc) + p.textWidth(label, name) + 16
		labelCol = max(labelCol, need)
	}
	labelCol = min(labelCol, 0.6*p.w)
	barLeft, barRight := labelCol+8, p.w-margin-70 // room for the last bar's duration
	xOf := func(t time.Time) float64 {
		return barLeft + float64(t.Sub(t0))/float64(total)*(barRight-barLeft)
	}
	top := float64(headerHeight)
	bottom := top + float64(len(rows)*rowHeight)

	for i := range rows {
		if i%2 == 1 {
			y := top + float64(i*rowHeight)
			p.rect(stripe, 0, y, p.w, y+rowHeight)
		}
	}
	step := tickStep(total)
	for t := time.Duration(0); t <= total; t += step {
		tx := barLeft + float64(t)/float64(total)*(barRight-barLeft)
		p.line(gridLine, 1, false, [2]float64{tx, top - 4}, [2]float64{tx, bottom})
		s := fmtDur(t)
		if t == 0 {
			s = "0"
		}
		p.text(small, tx-p.textWidth(small, s)/2, top-12, s)
	}
	p.line(faint, 1, false, [2]float64{labelCol, top - 4}, [2]float64{labelCol, bottom})

	centre := func(i int) float64 { return top + float64(i*rowHeight) + rowHeight/2 }
	for i, r := range rows {
		y := centre(i)
		// Label, cut with an ellipsis when even 60 % of the width is not enough.
		lx := margin + float64(r.Depth*indentStep)
		p.rect(colours[r.Service], lx, y-4, lx+8, y+4)
		lx += 14
		svc, name := labelOf(r)
		lx += p.text(p.style(12, true, darker(colours[r.Service])), lx, y, svc)
		for room := labelCol - 8 - lx; len(name) > 1 && p.textWidth(label, name) > room; {
			name = string([]rune(name)[:len([]rune(name))-2]) + "…"
		}
		p.text(label, lx, y, name)

		// Bar, at least 2 px so the shortest span is visible.
		x0 := xOf(r.Start)
		x1 := max(xOf(r.Start.Add(r.Duration)), x0+2)
		p.rect(colours[r.Service], x0, y-7, x1, y+7)
		if r.Error {
			p.line(errInk, 2, false, [2]float64{x0, y - 7}, [2]float64{x1, y - 7}, [2]float64{x1, y + 7}, [2]float64{x0, y + 7}, [2]float64{x0, y - 7})
		}
		d := fmtDur(r.Duration)
		if dw := p.textWidth(small, d); x1+4+dw <= p.w-margin {
			p.text(small, x1+4, y, d)
		} else {
			p.text(small, x0-4-dw, y, d)
		}
	}

	// NATS hops: from the producer's bar down to where its consumer starts.
	for i, r := range rows {
		if !r.Hop {
			continue
		}
		px := xOf(rows[r.Parent].Start)
		py := centre(r.Parent) + 7
		cx, cy := xOf(r.Start)-1, centre(i)
		if cx-px < 8 { // consumer starts almost with its producer: enter from the left
			px = cx - 8
		}
		p.line(hopInk, 1.2, true, [2]float64{px, py}, [2]float64{px, cy}, [2]float64{cx - 5, cy})
		p.arrowhead(hopInk, cx, cy)
	}
	// Links (FOLLOWS_FROM) to spans elsewhere in the trace: a dashed line between bars.
	index := make(map[string]int, len(rows))
	for i, r := range rows {
		index[r.SpanID] = i
	}
	for i, r := range rows {
		for _, ref := range r.References {
			j, ok := index[ref.SpanID]
			if ref.Type != "FOLLOWS_FROM" || !ok {
				continue
			}
			p.line(faint, 1, true, [2]float64{xOf(rows[j].Start), centre(j)}, [2]float64{xOf(r.Start), centre(i)})
		}
	}

	p.text(small, margin, bottom+footerHeight/2,
		"bars: span start to end on one time axis · indentation: parent/child · label: service: span name · dashed arrow: a message's producer span to the span that consumed it")
}

// tickStep picks a round axis step (1, 2 or 5 × 10^k) giving at most ten ticks.
func tickStep(total time.Duration) time.Duration {
	raw := float64(total) / 10
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			return max(time.Duration(m*mag), 1)
		}
	}
	return max(time.Duration(10*mag), 1)
}

func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%d µs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.4g ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.4g s", d.Seconds())
	}
}

func darker(c color.RGBA) color.RGBA {
	return color.RGBA{c.R * 3 / 5, c.G * 3 / 5, c.B * 3 / 5, 0xff}
}
