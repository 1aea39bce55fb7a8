package ops

import (
	"math"
	"runtime"
	"sync"
	"unsafe"

	"github.com/zoo-ml/zoo/nn/internal/blas"
)

// Float is the element type of the kernels.
type Float = blas.Float

// parallelFor runs f over [0,n) split into at most GOMAXPROCS chunks.
func parallelFor(n int, f func(lo, hi int)) {
	w := runtime.GOMAXPROCS(0)
	if w > n {
		w = n
	}
	if w <= 1 {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	chunk := (n + w - 1) / w
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			f(lo, hi)
		}(lo, hi)
	}
	wg.Wait()
}

// ConvGeom is the geometry of a 2-D convolution on NCHW data with a
// [K, C, R, S] filter, square stride and symmetric zero padding.
type ConvGeom struct {
	N, C, H, W  int // input
	K, R, S     int // output channels, kernel height and width
	Stride, Pad int
}

// OH returns the output height.
func (g ConvGeom) OH() int { return (g.H+2*g.Pad-g.R)/g.Stride + 1 }

// OW returns the output width.
func (g ConvGeom) OW() int { return (g.W+2*g.Pad-g.S)/g.Stride + 1 }

// pointwise reports whether the conv is a 1x1 stride-1 unpadded conv, which
// is a plain matrix product per image.
func (g ConvGeom) pointwise() bool { return g.R == 1 && g.S == 1 && g.Stride == 1 && g.Pad == 0 }

// validCols returns the range [lo, hi) of output columns j whose input
// column x0 + j*stride lies inside [0, w), for ow output columns.
func validCols(x0, stride, w, ow int) (lo, hi int) {
	if x0 < 0 {
		lo = (-x0 + stride - 1) / stride
	}
	// largest j with x0 + j*stride <= w-1
	if w-1-x0 < 0 {
		return 0, 0
	}
	hi = min(ow, (w-1-x0)/stride+1)
	if lo > hi {
		lo = hi
	}
	return lo, hi
}

// im2col writes the [C*R*S, OH*OW] patch matrix of one image. Each patch
// row is a copy of an input row (strided for stride > 1) between zero
// borders, so the bounds are worked out once per row, not per element.
func im2col[T Float](g ConvGeom, x, col []T) {
	oh, ow := g.OH(), g.OW()
	for c := 0; c < g.C; c++ {
		xc := x[c*g.H*g.W : (c+1)*g.H*g.W]
		for r := 0; r < g.R; r++ {
			for s := 0; s < g.S; s++ {
				row := col[((c*g.R+r)*g.S+s)*oh*ow:][:oh*ow]
				x0 := s - g.Pad
				lo, hi := validCols(x0, g.Stride, g.W, ow)
				for i := 0; i < oh; i++ {
					y := i*g.Stride - g.Pad + r
					dst := row[i*ow : (i+1)*ow]
					if y < 0 || y >= g.H {
						clear(dst)
						continue
					}
					src := xc[y*g.W : (y+1)*g.W]
					clear(dst[:lo])
					clear(dst[hi:])
					if g.Stride == 1 {
						copy(dst[lo:hi], src[x0+lo:x0+hi])
						continue
					}
					xx := x0 + lo*g.Stride
					for j := lo; j < hi; j++ {
						dst[j] = src[xx]
						xx += g.Stride
					}
				}
			}
		}
	}
}

// col2im adds the patch matrix col back into one image dx (which it does
// not clear).
func col2im[T Float](g ConvGeom, col, dx []T) {
	oh, ow := g.OH(), g.OW()
	for c := 0; c < g.C; c++ {
		dc := dx[c*g.H*g.W : (c+1)*g.H*g.W]
		for r := 0; r < g.R; r++ {
			for s := 0; s < g.S; s++ {
				row := col[((c*g.R+r)*g.S+s)*oh*ow:][:oh*ow]
				x0 := s - g.Pad
				lo, hi := validCols(x0, g.Stride, g.W, ow)
				for i := 0; i < oh; i++ {
					y := i*g.Stride - g.Pad + r
					if y < 0 || y >= g.H {
						continue
					}
					dst := dc[y*g.W : (y+1)*g.W]
					src := row[i*ow : (i+1)*ow]
					if g.Stride == 1 {
						d := dst[x0+lo : x0+hi]
						for j, v := range src[lo:hi] {
							d[j] += v
						}
						continue
					}
					xx := x0 + lo*g.Stride
					for j := lo; j < hi; j++ {
						dst[xx] += src[j]
						xx += g.Stride
					}
				}
			}
		}
	}
}

// ColSize returns the number of elements of one image's im2col patch
// matrix (0 for pointwise convs, which need none).
func (g ConvGeom) ColSize() int {
	if g.pointwise() {
		return 0
	}
	return g.C * g.R * g.S * g.OH() * g.OW()
}

// Workers returns how many images the conv kernels process in parallel.
// The images of a batch are split over GOMAXPROCS goroutines, each
// calling a (single-threaded, with OpenBLAS) gemm per image: parallelism
// stays in Go's hands, so Go and BLAS threads never compete.
func (g ConvGeom) Workers() int { return max(1, min(runtime.GOMAXPROCS(0), g.N)) }

// ScratchSize returns the scratch buffer size the conv kernels want:
// one patch matrix per worker, and for the filter gradient one partial
// filter gradient per worker but the first.
func (g ConvGeom) ScratchSize(filter bool) int {
	n := g.Workers() * g.ColSize()
	if filter {
		n += (g.Workers() - 1) * g.K * g.C * g.R * g.S
	}
	return n
}

func scratch[T Float](buf []T, n int) []T {
	if len(buf) >= n {
		return buf[:n]
	}
	return make([]T, n)
}

// overImages runs f(worker, n) for every image n, split in contiguous
// ranges over g.Workers() goroutines.
func overImages(g ConvGeom, f func(worker, lo, hi int)) {
	nw := g.Workers()
	if nw == 1 {
		f(0, 0, g.N)
		return
	}
	var wg sync.WaitGroup
	for k := 0; k < nw; k++ {
		lo, hi := k*g.N/nw, (k+1)*g.N/nw
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(k, lo, hi)
		}()
	}
	wg.Wait()
}

// The conv kernels take a scratch buffer of ScratchSize elements; with a
// shorter one they allocate.

// ConvForward computes y = conv(x, w) for NCHW x and [K,C,R,S] w into the
// NCHW y ([N,K,OH,OW]).
func ConvForward[T Float](g ConvGeom, x, w, y, buf []T) {
	convForward(g, x, w, y, buf, nil)
}

// convForward is ConvForward calling after(n) once image n's output is
// complete, from the goroutine that computed it.
func convForward[T Float](g ConvGeom, x, w, y, buf []T, after func(n int)) {
	crs, cs := g.C*g.R*g.S, g.ColSize()
	hw, ohw := g.H*g.W, g.OH()*g.OW()
	buf = scratch(buf, g.ScratchSize(false))
	overImages(g, func(k, lo, hi int) {
		col := buf[k*cs : (k+1)*cs]
		for n := lo; n < hi; n++ {
			xn := x[n*g.C*hw : (n+1)*g.C*hw]
			yn := y[n*g.K*ohw : (n+1)*g.K*ohw]
			if g.pointwise() {
				blas.Gemm(false, false, g.K, ohw, g.C, w, g.C, xn, hw, 0, yn, ohw)
			} else {
				im2col(g, xn, col)
				blas.Gemm(false, false, g.K, ohw, crs, w, crs, col, ohw, 0, yn, ohw)
			}
			if after != nil {
				after(n)
			}
		}
	})
}

// ShiftConvForward computes y = conv(Shift(x)) for a pointwise conv g
// (1x1, stride 1, no padding) and Shift as in Shift (t frames per clip,
// channels [0,c1) from the previous frame, [c1,c2) from the next), without
// the shifted copy of x: image n's product is W[:, 0:c1]·x[n-1] +
// W[:, c1:c2]·x[n+1] + W[:, c2:C]·x[n] over the matching channel rows,
// leaving out the frames past the clip's ends.
func ShiftConvForward[T Float](g ConvGeom, t, c1, c2 int, x, w, y []T) {
	shiftConvForward(g, t, c1, c2, x, w, y, nil)
}

func shiftConvForward[T Float](g ConvGeom, t, c1, c2 int, x, w, y []T, after func(n int)) {
	hw := g.H * g.W
	overImages(g, func(_, lo, hi int) {
		for n := lo; n < hi; n++ {
			yn := y[n*g.K*hw : (n+1)*g.K*hw]
			ti := n % t
			beta := T(0)
			part := func(frame, a, b int) {
				if a >= b || frame < 0 || frame >= t {
					return
				}
				m := n - ti + frame
				blas.Gemm(false, false, g.K, hw, b-a, w[a:], g.C, x[(m*g.C+a)*hw:], hw, beta, yn, hw)
				beta = 1
			}
			part(ti, c2, g.C)
			part(ti-1, 0, c1)
			part(ti+1, c1, c2)
			if beta == 0 {
				clear(yn)
			}
			if after != nil {
				after(n)
			}
		}
	})
}

// ConvBackwardData computes dx from dy and w; dx is overwritten.
func ConvBackwardData[T Float](g ConvGeom, w, dy, dx, buf []T) {
	crs, cs := g.C*g.R*g.S, g.ColSize()
	hw, ohw := g.H*g.W, g.OH()*g.OW()
	buf = scratch(buf, g.ScratchSize(false))
	overImages(g, func(k, lo, hi int) {
		col := buf[k*cs : (k+1)*cs]
		for n := lo; n < hi; n++ {
			dxn := dx[n*g.C*hw : (n+1)*g.C*hw]
			dyn := dy[n*g.K*ohw : (n+1)*g.K*ohw]
			if g.pointwise() {
				blas.Gemm(true, false, g.C, ohw, g.K, w, g.C, dyn, ohw, 0, dxn, hw)
				continue
			}
			blas.Gemm(true, false, crs, ohw, g.K, w, crs, dyn, ohw, 0, col, ohw)
			clear(dxn)
			col2im(g, col, dxn)
		}
	})
}

// ConvBackwardFilter computes dw from x and dy; dw is overwritten.
func ConvBackwardFilter[T Float](g ConvGeom, x, dy, dw, buf []T) {
	crs, cs := g.C*g.R*g.S, g.ColSize()
	hw, ohw := g.H*g.W, g.OH()*g.OW()
	nw, ws := g.Workers(), g.K*crs
	buf = scratch(buf, g.ScratchSize(true))
	partials := buf[nw*cs:]
	overImages(g, func(k, lo, hi int) {
		col := buf[k*cs : (k+1)*cs]
		acc := dw
		if k > 0 {
			acc = partials[(k-1)*ws : k*ws]
		}
		if lo == hi {
			clear(acc)
		}
		for n := lo; n < hi; n++ {
			xn := x[n*g.C*hw : (n+1)*g.C*hw]
			dyn := dy[n*g.K*ohw : (n+1)*g.K*ohw]
			// the first image overwrites acc, so it needs no clearing
			beta := T(1)
			if n == lo {
				beta = 0
			}
			if g.pointwise() {
				blas.Gemm(false, true, g.K, g.C, ohw, dyn, ohw, xn, hw, beta, acc, g.C)
				continue
			}
			im2col(g, xn, col)
			blas.Gemm(false, true, g.K, crs, ohw, dyn, ohw, col, ohw, beta, acc, crs)
		}
	})
	for k := 1; k < nw; k++ {
		for i, v := range partials[(k-1)*ws : k*ws] {
			dw[i] += v
		}
	}
}

// BNForwardTrain normalises x ([N,C,HW]) with its batch statistics, writes
// y = scale*xhat + offset (then ReLU when relu is set), and returns the
// batch mean and the biased batch variance (fluid's batch_norm uses the
// biased variance both for normalising and for the running average).
func BNForwardTrain[T Float](n, c, hw int, eps float64, relu bool, x, scale, offset, y, mean, invstd, variance []T) {
	m := float64(n * hw)
	parallelFor(c, func(lo, hi int) {
		for ch := lo; ch < hi; ch++ {
			// One pass for both moments, taken about the channel's first
			// value so that a large mean does not cancel the variance.
			k := float64(x[ch*hw])
			var s, ss float64
			for i := 0; i < n; i++ {
				a, b := sumSq(x[(i*c+ch)*hw:][:hw], k)
				s, ss = s+a, ss+b
			}
			d := s / m
			mu := k + d
			va := max(ss/m-d*d, 0)
			is := 1 / math.Sqrt(va+eps)
			mean[ch], variance[ch], invstd[ch] = T(mu), T(va), T(is)
			a := float64(scale[ch]) * is
			b := float64(offset[ch]) - mu*a
			bnApply(n, c, hw, ch, T(a), T(b), relu, x, y)
		}
	})
}

// sumSq returns the sum and the sum of squares of x - k, in float64 with
// four accumulators each (one chain of dependent adds would leave the
// loop waiting on add latency).
func sumSq[T Float](x []T, k float64) (s, ss float64) {
	var s0, s1, s2, s3, q0, q1, q2, q3 float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		v := x[i : i+4 : i+4]
		a, b, c, d := float64(v[0])-k, float64(v[1])-k, float64(v[2])-k, float64(v[3])-k
		s0, s1, s2, s3 = s0+a, s1+b, s2+c, s3+d
		q0, q1, q2, q3 = q0+a*a, q1+b*b, q2+c*c, q3+d*d
	}
	for ; i < len(x); i++ {
		a := float64(x[i]) - k
		s0, q0 = s0+a, q0+a*a
	}
	return (s0 + s1) + (s2 + s3), (q0 + q1) + (q2 + q3)
}

// BNForwardEval normalises x with the given (running) statistics.
func BNForwardEval[T Float](n, c, hw int, eps float64, relu bool, x, scale, offset, mean, variance, y []T) {
	parallelFor(c, func(lo, hi int) {
		for ch := lo; ch < hi; ch++ {
			is := 1 / math.Sqrt(float64(variance[ch])+eps)
			a := float64(scale[ch]) * is
			b := float64(offset[ch]) - float64(mean[ch])*a
			bnApply(n, c, hw, ch, T(a), T(b), relu, x, y)
		}
	})
}

func bnApply[T Float](n, c, hw, ch int, a, b T, relu bool, x, y []T) {
	for i := 0; i < n; i++ {
		src := x[(i*c+ch)*hw:][:hw]
		dst := y[(i*c+ch)*hw:][:hw]
		if relu {
			for j, v := range src {
				dst[j] = max(a*v+b, 0)
			}
		} else {
			for j, v := range src {
				dst[j] = a*v + b
			}
		}
	}
}

// BNBackward computes dx, dscale and doffset of y = BN(x) (ReLU'd when relu
// is set, in which case y is the op's output and masks dy). With train set
// the statistics are the batch's (mean, invstd from the forward pass) and
// the gradient flows through them; otherwise they are constants.
func BNBackward[T Float](n, c, hw int, train, relu bool, x, y, dy, scale, mean, invstd, dx, dscale, doffset []T) {
	m := float64(n * hw)
	parallelFor(c, func(lo, hi int) {
		for ch := lo; ch < hi; ch++ {
			mu, is := float64(mean[ch]), float64(invstd[ch])
			// sdy = sum(g), sdxm = sum(g*(x-mu)), g masked by the ReLU
			var sdy, sdxm float64
			for i := 0; i < n; i++ {
				off := (i*c + ch) * hw
				var ys []T
				if relu {
					ys = y[off:][:hw]
				}
				a, b := gradSums(dy[off:][:hw], x[off:][:hw], ys, mu)
				sdy, sdxm = sdy+a, sdxm+b
			}
			dscale[ch], doffset[ch] = T(sdxm*is), T(sdy)
			// dx = k*(g - sdy/m - xhat*sum(g*xhat)/m), xhat = (x-mu)*is,
			// written as k*g + c1*x + c0
			k := float64(scale[ch]) * is
			var c1, c0 float64
			if train {
				c1 = -k * is * is * sdxm / m
				c0 = -k*sdy/m - c1*mu
			}
			for i := 0; i < n; i++ {
				off := (i*c + ch) * hw
				xs, gs, ds := x[off:][:hw], dy[off:][:hw], dx[off:][:hw]
				if relu {
					ys := y[off:][:hw]
					for j, g := range gs {
						ds[j] = T(k*float64(pos(g, ys[j])) + c1*float64(xs[j]) + c0)
					}
					continue
				}
				for j, g := range gs {
					ds[j] = T(k*float64(g) + c1*float64(xs[j]) + c0)
				}
			}
		}
	})
}

// pos returns g where y > 0, else 0 (a NaN y counts by its sign bit:
// x86's default NaN, from 0/0, has it set and counts as negative), without
// a branch: a ReLU's mask is as good as random, and a mispredicted branch
// per element made the ReLU gradients five times slower (BenchmarkReLUGrad).
// The size test is a constant in each instantiation.
func pos[T Float](g, y T) T {
	if unsafe.Sizeof(y) == 4 {
		yb := *(*uint32)(unsafe.Pointer(&y))
		m := ^uint32((int64(int32(yb)) - 1) >> 63) // all ones when y's bits, as int32, are > 0
		r := *(*uint32)(unsafe.Pointer(&g)) & m
		return *(*T)(unsafe.Pointer(&r))
	}
	yb := *(*uint64)(unsafe.Pointer(&y))
	m := uint64(0)
	if int64(yb) > 0 {
		m = ^m
	}
	r := *(*uint64)(unsafe.Pointer(&g)) & m
	return *(*T)(unsafe.Pointer(&r))
}

// gradSums returns sum(g) and sum(g*(x-mu)) over one plane, g zeroed where
// y <= 0 when y is not nil, with four accumulators each.
func gradSums[T Float](g, x, y []T, mu float64) (sg, sgx float64) {
	var a0, a1, a2, a3, b0, b1, b2, b3 float64
	i := 0
	x = x[:len(g)]
	if y != nil {
		y = y[:len(g)]
	}
	for ; i+4 <= len(g); i += 4 {
		gv, xv := g[i:i+4:i+4], x[i:i+4:i+4]
		g0, g1, g2, g3 := float64(gv[0]), float64(gv[1]), float64(gv[2]), float64(gv[3])
		if y != nil {
			yv := y[i : i+4 : i+4]
			g0, g1, g2, g3 = float64(pos(gv[0], yv[0])), float64(pos(gv[1], yv[1])), float64(pos(gv[2], yv[2])), float64(pos(gv[3], yv[3]))
		}
		a0, a1, a2, a3 = a0+g0, a1+g1, a2+g2, a3+g3
		b0 += g0 * (float64(xv[0]) - mu)
		b1 += g1 * (float64(xv[1]) - mu)
		b2 += g2 * (float64(xv[2]) - mu)
		b3 += g3 * (float64(xv[3]) - mu)
	}
	for ; i < len(g); i++ {
		gv := float64(g[i])
		if y != nil {
			gv = float64(pos(g[i], y[i]))
		}
		a0 += gv
		b0 += gv * (float64(x[i]) - mu)
	}
	return (a0 + a1) + (a2 + a3), (b0 + b1) + (b2 + b3)
}

// MaxPoolForward is a max pool with a square window; padding never wins
// (fluid's pool2d max ignores padded cells). argmax receives, per output,
// the flat index of its input within the plane, or -1 for an empty window.
func MaxPoolForward[T Float](nc, h, w, k, stride, pad int, x, y []T, argmax []int32) {
	oh, ow := (h+2*pad-k)/stride+1, (w+2*pad-k)/stride+1
	parallelFor(nc, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			xp := x[p*h*w:][:h*w]
			for i := 0; i < oh; i++ {
				for j := 0; j < ow; j++ {
					best := T(math.Inf(-1))
					arg := int32(-1)
					for r := 0; r < k; r++ {
						yy := i*stride - pad + r
						if yy < 0 || yy >= h {
							continue
						}
						for s := 0; s < k; s++ {
							xx := j*stride - pad + s
							if xx < 0 || xx >= w {
								continue
							}
							if v := xp[yy*w+xx]; arg < 0 || v > best {
								best, arg = v, int32(yy*w+xx)
							}
						}
					}
					if arg < 0 {
						best = 0
					}
					o := p*oh*ow + i*ow + j
					y[o], argmax[o] = best, arg
				}
			}
		}
	})
}

// MaxPoolBackward scatters dy to the argmax positions; dx is overwritten.
func MaxPoolBackward[T Float](nc, hw, ohw int, argmax []int32, dy, dx []T) {
	clear(dx)
	parallelFor(nc, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			for o, a := range argmax[p*ohw : (p+1)*ohw] {
				if a >= 0 {
					dx[p*hw+int(a)] += dy[p*ohw+o]
				}
			}
		}
	})
}

// Shift is the TSM temporal shift in Paddle's direction on x viewed as
// [N*T, C, HW] with T frames per clip: channels [0,c1) take frame t-1,
// [c1,c2) take frame t+1 (zero where that frame does not exist), the rest
// are copied. With back set it computes the adjoint (the reverse shift),
// which is the gradient.
func Shift[T Float](nt, t, c, hw, c1, c2 int, back bool, x, y []T) {
	parallelFor(nt, func(lo, hi int) {
		for f := lo; f < hi; f++ {
			ti := f % t
			for ch := 0; ch < c; ch++ {
				src := f
				switch {
				case ch < c1:
					src = f - 1
					if back {
						src = f + 1
					}
				case ch < c2:
					src = f + 1
					if back {
						src = f - 1
					}
				}
				dst := y[(f*c+ch)*hw:][:hw]
				st := ti + (src - f)
				if st < 0 || st >= t {
					clear(dst)
					continue
				}
				copy(dst, x[(src*c+ch)*hw:][:hw])
			}
		}
	})
}

func gemm[T Float](tA, tB bool, m, n, k int, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	blas.Gemm(tA, tB, m, n, k, a, lda, b, ldb, beta, c, ldc)
}

// BLAS describes the matrix-multiply backend and its kernel set.
func BLAS() string { return blas.Backend() + " (" + blas.Kernels() + ")" }
