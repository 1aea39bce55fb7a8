#!/usr/bin/env python3
"""TSM-R50 in plain PyTorch: the peer scripts/gpu-check.sh times zoo's GPU
build against, on the same GPU in the same run.

The network is zoo's (nn/resnet): ResNet-50 v1.5 (stride on the 3x3),
TSM's residual shift of 1/8 of the channels each way before every
bottleneck's first conv, global average pool, dropout 0.5, the mean over
8 segments, fc to 400 classes, softmax cross entropy; the training step is
Momentum 0.9 with L2 decay 1e-4. fp32 with TF32 off (zoo's cuBLAS calls
are strict fp32 too); cudnn.benchmark on, as a PyTorch user would run it.
Needs only torch (no torchvision).

    python3 bench/torch_tsm.py --batch 8,32 --iters 5 --json out.json
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def shift(x, seg, ratio=1 / 8):
    nt, c, h, w = x.shape
    x = x.view(nt // seg, seg, c, h, w)
    c1, c2 = int(c * ratio), int(c * 2 * ratio)
    out = torch.zeros_like(x)
    out[:, 1:, :c1] = x[:, :-1, :c1]  # channels [0,c1) take frame t-1
    out[:, :-1, c1:c2] = x[:, 1:, c1:c2]  # [c1,c2) take frame t+1
    out[:, :, c2:] = x[:, :, c2:]
    return out.view(nt, c, h, w)


def conv_bn(cin, cout, k, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout, momentum=0.1, eps=1e-5))


class Bottleneck(nn.Module):
    def __init__(self, cin, f, stride, seg):
        super().__init__()
        self.seg = seg
        self.a, self.b, self.c = conv_bn(cin, f, 1), conv_bn(f, f, 3, stride), conv_bn(f, 4 * f, 1)
        self.short = conv_bn(cin, 4 * f, 1, stride) if (cin != 4 * f or stride != 1) else None

    def forward(self, x):
        h = F.relu(self.a(shift(x, self.seg)))
        h = F.relu(self.b(h))
        h = self.c(h)
        return F.relu(h + (self.short(x) if self.short is not None else x))


class TSM(nn.Module):
    def __init__(self, classes=400, seg=8):
        super().__init__()
        self.seg = seg
        self.stem = conv_bn(3, 64, 7, 2)
        blocks, cin = [], 64
        for s, n in enumerate([3, 4, 6, 3]):
            f = 64 << s
            for i in range(n):
                blocks.append(Bottleneck(cin, f, 2 if (i == 0 and s) else 1, seg))
                cin = 4 * f
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        h = F.max_pool2d(F.relu(self.stem(x)), 3, 2, 1)
        h = self.blocks(h)
        h = F.adaptive_avg_pool2d(h, 1).flatten(1)
        # fluid's downgrade_in_infer: no rescaling in training, x(1-p) in eval
        h = h * (torch.rand_like(h) >= 0.5) if self.training else h * 0.5
        h = h.view(-1, self.seg, h.shape[1]).mean(1)
        return self.fc(h)


def timed(f, iters):
    for _ in range(2):
        f()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(iters):
        f()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) * 1000 / iters


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", default="8,32")
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    dev = torch.device("cuda")
    out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
           "cudnn": torch.backends.cudnn.version(), "bench": []}
    for b in [int(x) for x in a.batch.split(",") if x]:
        torch.manual_seed(0)
        m = TSM().to(dev)
        opt = torch.optim.SGD(m.parameters(), lr=0.001, momentum=0.9, weight_decay=1e-4)
        x = torch.randn(b * 8, 3, 224, 224, device=dev)
        y = torch.randint(0, 400, (b,), device=dev)

        def fwd():
            m.eval()
            with torch.no_grad():
                return F.softmax(m(x), 1).cpu()

        def train():
            m.train()
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(m(x), y)
            loss.backward()
            opt.step()
            return loss.item()

        r = {"batch": b, "forward_ms": timed(fwd, a.iters), "train_step_ms": timed(train, a.iters), "iterations": a.iters}
        r["train_clips_per_s"] = b / (r["train_step_ms"] / 1000)
        print(f"torch tsm-r50 batch {b}: forward {r['forward_ms']:.1f} ms, train step {r['train_step_ms']:.1f} ms", flush=True)
        out["bench"].append(r)
        del m, opt, x
        torch.cuda.empty_cache()
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
