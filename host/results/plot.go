package results

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/zoo-ml/zoo/internal/fsx"
)

// PlotFile is the name of the plot inside save_dir.
const PlotFile = "metrics.png"

// EpochMean is one phase's mean loss and top-1 over the events of an epoch.
type EpochMean struct {
	Epoch      int
	Loss, Top1 float64
}

// PerEpoch averages the events of a phase by epoch, in epoch order; NaN
// values are left out of the means (an epoch with only NaN gives NaN).
// When a resumed run logs an epoch again, all its events count.
func PerEpoch(events []Event, phase string) []EpochMean {
	type acc struct {
		loss, top1 float64
		nl, nt     int
	}
	byEpoch := map[int]*acc{}
	for _, e := range events {
		if !strings.EqualFold(e.Phase, phase) {
			continue
		}
		a := byEpoch[e.Epoch]
		if a == nil {
			a = &acc{}
			byEpoch[e.Epoch] = a
		}
		if !math.IsNaN(e.Loss) && !math.IsInf(e.Loss, 0) {
			a.loss += e.Loss
			a.nl++
		}
		if !math.IsNaN(e.Top1) {
			a.top1 += e.Top1
			a.nt++
		}
	}
	var out []EpochMean
	for ep, a := range byEpoch {
		m := EpochMean{Epoch: ep, Loss: math.NaN(), Top1: math.NaN()}
		if a.nl > 0 {
			m.Loss = a.loss / float64(a.nl)
		}
		if a.nt > 0 {
			m.Top1 = a.top1 / float64(a.nt)
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b EpochMean) int { return a.Epoch - b.Epoch })
	return out
}

// Plot draws loss (top panel) and top-1 accuracy (bottom panel) per epoch,
// train and valid, and writes the PNG to path atomically.
func Plot(path string, events []Event) error {
	img, err := drawPlot(events)
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return fsx.WriteFile(path, fsx.Options{}, func(w io.Writer) error {
		_, err := vgimg.PngCanvas{Canvas: img}.WriteTo(w)
		return err
	})
}

var phaseStyle = []struct {
	phase string
	color color.Color
	dash  []vg.Length
}{
	{"train", color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, nil},
	{"valid", color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}, []vg.Length{vg.Points(6), vg.Points(3)}},
}

func drawPlot(events []Event) (*vgimg.Canvas, error) {
	loss, top1 := plot.New(), plot.New()
	loss.Title.Text = "Loss per epoch"
	loss.Y.Label.Text = "loss"
	top1.Title.Text = "Top-1 accuracy per epoch"
	top1.Y.Label.Text = "top-1"
	top1.Y.Min, top1.Y.Max = 0, 1
	// Loss falls and accuracy rises: keep each legend off the curves' ends.
	loss.Legend.Top = true
	for _, p := range []*plot.Plot{loss, top1} {
		p.X.Label.Text = "epoch"
		p.Add(plotter.NewGrid())
		p.X.Tick.Marker = integerTicks{}
	}
	drawn := 0
	for _, st := range phaseStyle {
		means := PerEpoch(events, st.phase)
		var lxy, axy plotter.XYs
		for _, m := range means {
			if !math.IsNaN(m.Loss) {
				lxy = append(lxy, plotter.XY{X: float64(m.Epoch), Y: m.Loss})
			}
			if !math.IsNaN(m.Top1) {
				axy = append(axy, plotter.XY{X: float64(m.Epoch), Y: m.Top1})
			}
		}
		for _, pair := range []struct {
			p   *plot.Plot
			xys plotter.XYs
		}{{loss, lxy}, {top1, axy}} {
			if len(pair.xys) == 0 {
				continue
			}
			l, s, err := plotter.NewLinePoints(pair.xys)
			if err != nil {
				return nil, err
			}
			l.Color, l.Dashes = st.color, st.dash
			l.Width = vg.Points(1.5)
			s.Color, s.Shape = st.color, draw.CircleGlyph{}
			pair.p.Add(l, s)
			pair.p.Legend.Add(st.phase, l, s)
			drawn++
		}
	}
	if drawn == 0 {
		return nil, fmt.Errorf("no train or valid events with finite values")
	}
	img := vgimg.New(vg.Points(640), vg.Points(720))
	dc := draw.New(img)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadX: vg.Millimeter, PadY: 4 * vg.Millimeter,
		PadTop: 2 * vg.Millimeter, PadBottom: 2 * vg.Millimeter, PadLeft: 2 * vg.Millimeter, PadRight: 4 * vg.Millimeter}
	canvases := plot.Align([][]*plot.Plot{{loss}, {top1}}, tiles, dc)
	loss.Draw(canvases[0][0])
	top1.Draw(canvases[1][0])
	return img, nil
}

// integerTicks labels whole epochs only.
type integerTicks struct{}

func (integerTicks) Ticks(lo, hi float64) []plot.Tick {
	step := math.Max(1, math.Ceil((hi-lo)/10))
	var ticks []plot.Tick
	for x := math.Ceil(lo); x <= hi; x += step {
		ticks = append(ticks, plot.Tick{Value: x, Label: fmt.Sprintf("%d", int(x))})
	}
	return ticks
}
