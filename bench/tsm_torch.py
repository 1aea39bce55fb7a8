#!/usr/bin/env python3
"""PyTorch peer of zoo's benchmark: TSM-ResNet-50 as Paddle defines it.

zoo-bench (bench/main.go) runs this script once per case, each in its own
process so that the peak RSS it reports belongs to that case alone, and
prints zoo's time next to PyTorch's. Run by hand:

    /usr/bin/python3 bench/tsm_torch.py --case fwd --batch 1 --iters 3

The network is zoo's nn/resnet at Depth 50 (Paddle's TSM_ResNet):
ResNet-50 bottlenecks with the temporal shift (channels [0, C/8) take
frame t-1, [C/8, C/4) frame t+1, zero past the clip's ends) applied to the
input of branch2a only, global average pooling, dropout 0.5
(downgrade_in_infer: masks in training, x0.5 in evaluation), the mean over
the clip's segments, then the fc. Inputs are [batch*8, 3, 224, 224]
float32. Values are random: only the time matters here; nn/testdata holds
the numerical oracle.

It prints one JSON object per run on stdout: the case, seconds per clip
(wall and CPU, user+system, from getrusage), iterations and peak RSS.
"""
import argparse
import json
import math
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def temporal_shift(x, seg, ratio=1.0 / 8):
    nt, c, h, w = x.shape
    x = x.view(nt // seg, seg, c, h, w)
    c1, c2 = int(c * ratio), int(c * 2 * ratio)
    out = torch.zeros_like(x)
    out[:, 1:, :c1] = x[:, :-1, :c1]  # frame t takes t-1
    out[:, :-1, c1:c2] = x[:, 1:, c1:c2]  # frame t takes t+1
    out[:, :, c2:] = x[:, :, c2:]
    return out.view(nt, c, h, w)


class ConvBN(nn.Sequential):
    def __init__(self, cin, cout, k, stride=1, relu=True):
        layers = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, bias=False), nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1)]
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class Bottleneck(nn.Module):
    def __init__(self, cin, f, stride, seg):
        super().__init__()
        self.seg = seg
        self.a = ConvBN(cin, f, 1)
        self.b = ConvBN(f, f, 3, stride)
        self.c = ConvBN(f, 4 * f, 1, relu=False)
        self.short = ConvBN(cin, 4 * f, 1, stride, relu=False) if cin != 4 * f or stride != 1 else None

    def forward(self, x):
        h = self.c(self.b(self.a(temporal_shift(x, self.seg))))
        s = x if self.short is None else self.short(x)
        return F.relu(h + s)


class TSM(nn.Module):
    def __init__(self, classes=400, seg=8, width=64):
        super().__init__()
        self.seg = seg
        self.stem = ConvBN(3, width, 7, 2)
        blocks, cin = [], width
        for s, n in enumerate([3, 4, 6, 3]):
            f = width << s
            for i in range(n):
                blocks.append(Bottleneck(cin, f, 2 if i == 0 and s > 0 else 1, seg))
                cin = 4 * f
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, classes)
        # zoo's (and fluid's) initialisation: conv filters Normal(0,
        # sqrt(2/fan_in)). PyTorch's default would shrink activations layer
        # by layer, towards denormal numbers, which are slow on x86.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_in))

    def forward(self, x):
        x = F.max_pool2d(self.stem(x), 3, 2, 1)
        x = self.blocks(x)
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        if self.training:
            x = x * (torch.rand_like(x) >= 0.5)
        else:
            x = x * 0.5
        x = x.view(-1, self.seg, x.shape[1]).mean(1)
        return self.fc(x)


def kernels():
    """The kernel library and ISA PyTorch runs on: ATen's CPU capability
    (from torch.__config__.show()) and oneDNN's version and the ISA it
    dispatches to, asked of the libdnnl.so.2 this process has loaded."""
    cfg = torch.__config__.show()
    aten = next((l.split(":", 1)[1].strip() for l in cfg.splitlines() if "CPU capability usage" in l), "?")
    dnnl = next((l.strip(" -") for l in cfg.splitlines() if "MKL-DNN" in l or "oneDNN" in l), "no oneDNN")
    isa = "?"
    try:
        import ctypes
        names = {0x27: "avx512_core", 0x67: "avx512_core_vnni", 0xE7: "avx512_core_bf16", 0x3E7: "avx512_core_amx", 0x7: "avx2"}
        lib = ctypes.CDLL("libdnnl.so.2")
        isa = names.get(lib.dnnl_get_effective_cpu_isa(), "?")
    except OSError:
        pass
    return "%s (%s), mkldnn enabled %s, ATen %s, %d threads" % (dnnl, isa, torch.backends.mkldnn.enabled, aten, torch.get_num_threads())


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", choices=["fwd", "train"], required=True)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                    help="bf16: under torch.autocast('cpu', dtype=torch.bfloat16): the forward pass "
                         "(--case fwd), or the training step's forward and loss, backward outside it as PyTorch "
                         "recommends, fp32 parameters and optimizer (--case train)")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    seg = 8
    model = TSM(seg=seg)
    x = torch.randn(a.batch * seg, 3, a.size, a.size)
    labels = torch.zeros(a.batch, dtype=torch.long)
    if a.case == "fwd":
        model.eval()

        def step():
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.precision == "bf16"):
                model(x)
    else:
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)

        def step():
            opt.zero_grad(set_to_none=True)
            # bf16: autocast covers the forward pass and the loss only; the
            # backward pass runs outside it (its ops take the forward's
            # dtypes), as torch.amp's documentation recommends. No grad
            # scaler: bf16 has fp32's exponent range.
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.precision == "bf16"):
                loss = F.cross_entropy(model(x), labels)
            loss.backward()
            opt.step()

    for _ in range(a.warmup):
        step()
    c0, t0 = cpu_seconds(), time.perf_counter()
    for _ in range(a.iters):
        step()
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    clips = a.iters * a.batch
    json.dump({"case": a.case, "batch": a.batch, "iters": a.iters, "threads": torch.get_num_threads(),
               "wall_s_per_clip": wall / clips, "cpu_s_per_clip": cpu / clips,
               "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
               "torch": torch.__version__, "kernels": kernels(), "precision": a.precision}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
