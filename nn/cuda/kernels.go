//go:build zoocuda

package cuda

// kernelNames lists the kernels Open looks up in the compiled module.
var kernelNames = []string{
	"im2col", "col2im", "to_cnhw",
	"bn_stats", "bn_coef_eval", "bn_apply", "bn_bwd_reduce", "bn_bwd_apply",
	"maxpool_fwd", "maxpool_bwd", "gap_fwd", "gap_bwd",
	"shift", "dropout", "dropout_eval", "segmean_fwd", "segmean_bwd",
	"bias_rows", "col_sum", "softmax_ce",
	"add_relu", "relu_grad", "add", "momentum",
}

// kernelSource is every kernel, compiled by NVRTC (Compile) with
// --fmad=false so that a*x+b rounds as the Go twin's does. Each kernel
// mirrors a function of nn/ops, named in its comment; sums the CPU code
// accumulates in float64 are accumulated in double here too. Sizes are
// int (every buffer is under 2^31 elements; Model checks), indices long
// long. One thread per output element unless the comment says otherwise.
const kernelSource = `
#define TID ((long long)blockIdx.x * blockDim.x + threadIdx.x)

extern "C" {

// ops.im2col for nimg images of x ([nimg][C][H][W]): patch element
// (crs, img, p) goes to col[img*sImg + crs*sRow + p]. sImg = C*R*S*OHW,
// sRow = OHW gives one [CRS, OHW] matrix per image (forward, data
// gradient); sImg = OHW, sRow = nimg*OHW one [CRS, nimg*OHW] matrix for the
// whole chunk (filter gradient).
__global__ void im2col(const float *x, float *col, int total, int C, int H, int W, int R, int S,
		int stride, int pad, int OH, int OW, int sImg, int sRow) {
	long long i = TID;
	if (i >= total) return;
	int ohw = OH * OW, crsN = C * R * S;
	int p = (int)(i % ohw);
	long long t = i / ohw;
	int crs = (int)(t % crsN), img = (int)(t / crsN);
	int s = crs % S, r = (crs / S) % R, c = crs / (R * S);
	int y = (p / OW) * stride - pad + r, xx = (p % OW) * stride - pad + s;
	float v = 0.f;
	if (y >= 0 && y < H && xx >= 0 && xx < W) v = x[((long long)img * C + c) * H * W + (long long)y * W + xx];
	col[(long long)img * sImg + (long long)crs * sRow + p] = v;
}

// ops.col2im as a gather (no atomics): dx ([nimg][C][H][W], overwritten)
// sums the per-image [CRS, OHW] patch matrices' entries that came from it.
__global__ void col2im(const float *col, float *dx, int total, int C, int H, int W, int R, int S,
		int stride, int pad, int OH, int OW) {
	long long i = TID;
	if (i >= total) return;
	int xx = (int)(i % W), y = (int)((i / W) % H), c = (int)((i / ((long long)W * H)) % C);
	long long img = i / ((long long)W * H * C);
	int ohw = OH * OW;
	const float *ci = col + img * (long long)C * R * S * ohw;
	float sum = 0.f;
	for (int r = 0; r < R; r++) {
		int ty = y + pad - r;
		if (ty < 0 || ty % stride != 0 || ty / stride >= OH) continue;
		int oy = ty / stride;
		for (int s = 0; s < S; s++) {
			int tx = xx + pad - s;
			if (tx < 0 || tx % stride != 0 || tx / stride >= OW) continue;
			sum += ci[(long long)((c * R + r) * S + s) * ohw + oy * OW + tx / stride];
		}
	}
	dx[i] = sum;
}

// [nimg][C][P] -> [C][nimg][P], for the filter gradient's single gemm.
__global__ void to_cnhw(const float *x, float *y, int total, int nimg, int C, int P) {
	long long i = TID;
	if (i >= total) return;
	int p = (int)(i % P);
	long long t = i / P;
	int n = (int)(t % nimg), c = (int)(t / nimg);
	y[i] = x[((long long)n * C + c) * P + p];
}

__device__ double block_sum(double v, double *sh) {
	sh[threadIdx.x] = v;
	__syncthreads();
	for (int s = blockDim.x / 2; s > 0; s >>= 1) {
		if (threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
		__syncthreads();
	}
	double r = sh[0];
	__syncthreads();
	return r;
}

// ops.BNForwardTrain's statistics and bnOp's running-stat update, one
// 256-thread block per channel: batch mean, biased variance, invstd, the
// running averages, and the affine coefficients a, b of y = a*x + b.
__global__ void bn_stats(const float *x, int N, int C, int HW, double eps, float momentum,
		const float *scale, const float *offset, float *mean, float *invstd,
		float *rmean, float *rvar, float *a, float *b) {
	__shared__ double sh[256];
	int c = blockIdx.x;
	double m = (double)N * HW, s = 0;
	for (int n = 0; n < N; n++) {
		const float *xc = x + ((long long)n * C + c) * HW;
		for (int j = threadIdx.x; j < HW; j += blockDim.x) s += xc[j];
	}
	double mu = block_sum(s, sh) / m, ss = 0;
	for (int n = 0; n < N; n++) {
		const float *xc = x + ((long long)n * C + c) * HW;
		for (int j = threadIdx.x; j < HW; j += blockDim.x) { double d = xc[j] - mu; ss += d * d; }
	}
	double va = block_sum(ss, sh) / m;
	if (threadIdx.x == 0) {
		double is = 1.0 / sqrt(va + eps);
		float fm = (float)mu, fv = (float)va;
		mean[c] = fm; invstd[c] = (float)is;
		rmean[c] = momentum * rmean[c] + (1.f - momentum) * fm;
		rvar[c] = momentum * rvar[c] + (1.f - momentum) * fv;
		double A = (double)scale[c] * is;
		a[c] = (float)A; b[c] = (float)((double)offset[c] - mu * A);
	}
}

// ops.BNForwardEval / convBN's coefficients from the running statistics,
// and the mean and invstd the backward pass of an eval-mode BN uses.
__global__ void bn_coef_eval(int C, double eps, const float *scale, const float *offset,
		const float *rmean, const float *rvar, float *mean, float *invstd, float *a, float *b) {
	int c = (int)TID;
	if (c >= C) return;
	double is = 1.0 / sqrt((double)rvar[c] + eps);
	double A = (double)scale[c] * is;
	a[c] = (float)A; b[c] = (float)((double)offset[c] - (double)rmean[c] * A);
	mean[c] = rmean[c]; invstd[c] = (float)is;
}

// ops.bnApply: y = a*x + b per channel, then ReLU when relu != 0.
__global__ void bn_apply(const float *x, float *y, int total, int C, int HW, const float *a, const float *b, int relu) {
	long long i = TID;
	if (i >= total) return;
	int c = (int)((i / HW) % C);
	float v = a[c] * x[i] + b[c];
	y[i] = relu && v < 0.f ? 0.f : v;
}

// ops.BNBackward's reductions, one 256-thread block per channel: dscale
// (sum dy*xhat) and doffset (sum dy), dy masked by y > 0 when relu != 0.
__global__ void bn_bwd_reduce(const float *x, const float *y, const float *dy, int N, int C, int HW, int relu,
		const float *mean, const float *invstd, float *dscale, float *doffset) {
	__shared__ double sh[256];
	int c = blockIdx.x;
	double mu = mean[c], is = invstd[c], sdy = 0, sdyx = 0;
	for (int n = 0; n < N; n++) {
		long long off = ((long long)n * C + c) * HW;
		for (int j = threadIdx.x; j < HW; j += blockDim.x) {
			if (relu && y[off + j] <= 0.f) continue;
			double g = dy[off + j];
			sdy += g;
			sdyx += g * ((double)x[off + j] - mu) * is;
		}
	}
	sdy = block_sum(sdy, sh);
	sdyx = block_sum(sdyx, sh);
	if (threadIdx.x == 0) { dscale[c] = (float)sdyx; doffset[c] = (float)sdy; }
}

// ops.BNBackward's data gradient.
__global__ void bn_bwd_apply(const float *x, const float *y, const float *dy, float *dx, int total, int N, int C, int HW,
		int relu, int train, const float *scale, const float *mean, const float *invstd,
		const float *dscale, const float *doffset) {
	long long i = TID;
	if (i >= total) return;
	int c = (int)((i / HW) % C);
	double m = (double)N * HW, is = invstd[c], k = (double)scale[c] * is;
	double g = dy[i];
	if (relu && y[i] <= 0.f) g = 0;
	if (train) {
		double xh = ((double)x[i] - mean[c]) * is;
		dx[i] = (float)(k * (g - (double)doffset[c] / m - xh * (double)dscale[c] / m));
	} else {
		dx[i] = (float)(k * g);
	}
}

// ops.MaxPoolForward over nc planes: padded cells never win, the first
// maximum in window order wins, argmax is the index in the plane.
__global__ void maxpool_fwd(const float *x, float *y, int *argmax, int total, int H, int W, int K, int stride, int pad, int OH, int OW) {
	long long i = TID;
	if (i >= total) return;
	int ox = (int)(i % OW), oy = (int)((i / OW) % OH);
	long long pl = i / ((long long)OW * OH);
	const float *xp = x + pl * H * W;
	float best = 0.f;
	int arg = -1;
	for (int r = 0; r < K; r++) {
		int yy = oy * stride - pad + r;
		if (yy < 0 || yy >= H) continue;
		for (int s = 0; s < K; s++) {
			int xx = ox * stride - pad + s;
			if (xx < 0 || xx >= W) continue;
			float v = xp[yy * W + xx];
			if (arg < 0 || v > best) { best = v; arg = yy * W + xx; }
		}
	}
	y[i] = arg < 0 ? 0.f : best;
	argmax[i] = arg;
}

// ops.MaxPoolBackward as a gather: each input cell sums the dy of the
// windows whose argmax it is.
__global__ void maxpool_bwd(const float *dy, const int *argmax, float *dx, int total, int H, int W, int K, int stride, int pad, int OH, int OW) {
	long long i = TID;
	if (i >= total) return;
	int xx = (int)(i % W), yy = (int)((i / W) % H);
	long long pl = i / ((long long)W * H);
	int me = yy * W + xx;
	int oy0 = yy + pad - K + 1, ox0 = xx + pad - K + 1;
	oy0 = oy0 <= 0 ? 0 : (oy0 + stride - 1) / stride;
	ox0 = ox0 <= 0 ? 0 : (ox0 + stride - 1) / stride;
	int oy1 = min(OH - 1, (yy + pad) / stride), ox1 = min(OW - 1, (xx + pad) / stride);
	float s = 0.f;
	for (int oy = oy0; oy <= oy1; oy++)
		for (int ox = ox0; ox <= ox1; ox++) {
			long long o = pl * OH * OW + oy * OW + ox;
			if (argmax[o] == me) s += dy[o];
		}
	dx[i] = s;
}

// ops.gap forward: one thread per plane, the sum in double.
__global__ void gap_fwd(const float *x, float *y, int nc, int HW) {
	long long p = TID;
	if (p >= nc) return;
	double s = 0;
	for (int j = 0; j < HW; j++) s += x[p * HW + j];
	y[p] = (float)(s / HW);
}

// ops.gap backward: dx = dy * (1/HW), 1/HW rounded to float first.
__global__ void gap_bwd(const float *dy, float *dx, int total, int HW) {
	long long i = TID;
	if (i >= total) return;
	dx[i] = dy[i / HW] * (1.f / (float)HW);
}

// ops.Shift: TSM's temporal shift on [NT][C][HW], T frames a clip;
// channels [0,c1) from frame t-1, [c1,c2) from t+1 (swapped when back).
__global__ void shift(const float *x, float *y, int total, int T, int C, int HW, int c1, int c2, int back) {
	long long i = TID;
	if (i >= total) return;
	int ch = (int)((i / HW) % C);
	long long f = i / ((long long)HW * C);
	int d = 0;
	if (ch < c1) d = back ? 1 : -1;
	else if (ch < c2) d = back ? -1 : 1;
	int st = (int)(f % T) + d;
	y[i] = (st < 0 || st >= T) ? 0.f : x[i + (long long)d * C * HW];
}

// ops.dropout in training (and its gradient): keep where mask is 1.
__global__ void dropout(const float *x, const unsigned char *mask, float *y, int total) {
	long long i = TID;
	if (i >= total) return;
	y[i] = mask[i] ? x[i] : 0.f;
}

// ops.dropout in inference: downgrade_in_infer scales by k = 1-p.
__global__ void dropout_eval(const float *x, float *y, int total, float k) {
	long long i = TID;
	if (i >= total) return;
	y[i] = x[i] * k;
}

// ops.segMean: [N*T, C] -> [N, C], the mean in double.
__global__ void segmean_fwd(const float *x, float *y, int total, int T, int C) {
	long long i = TID;
	if (i >= total) return;
	long long n = i / C;
	int j = (int)(i % C);
	double s = 0;
	for (int t = 0; t < T; t++) s += x[(n * T + t) * C + j];
	y[i] = (float)(s / T);
}

// ops.segMean backward: [N, C] -> [N*T, C], times (1/T) rounded to float.
__global__ void segmean_bwd(const float *dy, float *dx, int total, int T, int C) {
	long long i = TID;
	if (i >= total) return;
	long long f = i / C;
	dx[i] = dy[(f / T) * C + i % C] * (1.f / (float)T);
}

// ops.linear's bias rows: y[i, j] = b[j].
__global__ void bias_rows(const float *b, float *y, int total, int K) {
	long long i = TID;
	if (i >= total) return;
	y[i] = b[i % K];
}

// ops.linearGrad's db: column sums of dy [N, K], in row order as the CPU.
__global__ void col_sum(const float *dy, float *db, int N, int K) {
	int j = (int)TID;
	if (j >= K) return;
	float s = 0.f;
	for (int i = 0; i < N; i++) s += dy[(long long)i * K + j];
	db[j] = s;
}

// ops.SoftmaxCE and sceGradOp, one thread per row, in double: probs,
// each row's -log p[label] (0 without labels), and the logits' gradient
// (p - onehot)/N when labels is not null.
__global__ void softmax_ce(const float *logits, const int *labels, float *probs, double *loss, float *grad, int N, int K) {
	int r = (int)TID;
	if (r >= N) return;
	const float *x = logits + (long long)r * K;
	double m = -1e300, s = 0;
	for (int j = 0; j < K; j++) m = fmax(m, (double)x[j]);
	for (int j = 0; j < K; j++) s += exp((double)x[j] - m);
	loss[r] = 0;
	for (int j = 0; j < K; j++) {
		double pj = exp((double)x[j] - m) / s;
		probs[(long long)r * K + j] = (float)pj;
		if (labels) {
			if (j == labels[r]) loss[r] = -log(pj);
			grad[(long long)r * K + j] = (float)((pj - (j == labels[r] ? 1.0 : 0.0)) / N);
		}
	}
}

// ops.addReLU: y = max(a + b, 0).
__global__ void add_relu(const float *a, const float *b, float *y, int total) {
	long long i = TID;
	if (i >= total) return;
	float v = a[i] + b[i];
	y[i] = v > 0.f ? v : 0.f;
}

// ops.reluGrad: dx = dy where y > 0, else 0 (dx may be dy).
__global__ void relu_grad(const float *y, const float *dy, float *dx, int total) {
	long long i = TID;
	if (i >= total) return;
	dx[i] = y[i] > 0.f ? dy[i] : 0.f;
}

// y = a + b: gradients meeting at a node with two consumers.
__global__ void add(const float *a, const float *b, float *y, int total) {
	long long i = TID;
	if (i >= total) return;
	y[i] = a[i] + b[i];
}

// optim.step: fluid's Momentum with L2 decay folded into the gradient.
__global__ void momentum(float *w, const float *g, float *v, int total, float mu, float decay, float lr) {
	long long i = TID;
	if (i >= total) return;
	float vi = mu * v[i] + g[i] + decay * w[i];
	v[i] = vi;
	w[i] -= lr * vi;
}

}
`
