#!/usr/bin/env python3
"""Independent oracle for nn/resnet: Paddle's TSM written directly in PyTorch.

Writes tsm_torch_golden.json, which nn/resnet's TestTorchGolden compares
against. It needs PyTorch only when regenerating (Debian: apt-get install
python3-torch; then run /usr/bin/python3 nn/testdata/torch_tsm.py from the
repository root, or `go generate ./nn/resnet`). The Go test never runs it.

Everything that the Go test must reproduce is a closed formula shared by
both sides (see the functions param_value, input_value, dropout_uniform):
parameters come from each parameter's name, the input from its index, the
dropout mask from a hash of the element index. Paddle semantics written out
by hand rather than taken from torch.nn: temporal shift direction (channels
[0,C/8) take t-1, [C/8,C/4) take t+1), batch norm with the biased batch
variance (also for the running average, momentum 0.9), dropout
downgrade_in_infer (train: mask, no rescale; eval: x0.5), segment mean
before the fc, fc weight input-major.
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
EPS = 1e-5
STAGES = {18: [2, 2, 2, 2], 50: [3, 4, 6, 3]}


def name_phase(name):
    return (sum(ord(c) * (j + 1) for j, c in enumerate(name)) % 1000) / 100.0


def param_value(name, shape):
    """Deterministic parameter values; mirrored by paramValue in golden_test.go."""
    n = 1
    for s in shape:
        n *= s
    ph = name_phase(name)
    i = torch.arange(n, dtype=torch.float64)
    s = torch.sin(1.3 * i + ph)
    if name.endswith("_weights"):
        fan_in = n // shape[0]
        v = math.sqrt(2.0 / fan_in) * 1.7 * s
    elif name.endswith("_scale"):
        v = 1 + 0.3 * s
    elif name.endswith("_offset"):
        v = 0.1 * s
    elif name.endswith("_mean"):
        v = 0.1 * s
    elif name.endswith("_variance"):
        v = 1 + 0.5 * s * s
    elif name == "fc_0.w_0":
        v = 0.2 * s
    elif name == "fc_0.b_0":
        v = 0.05 * s
    else:
        raise ValueError(name)
    return v.reshape(shape)


def input_value(n):
    i = torch.arange(n, dtype=torch.float64)
    return torch.sin(0.7 * i) * torch.cos(0.013 * i)


def dropout_uniform(n):
    i = torch.arange(n, dtype=torch.float64)
    v = torch.sin(i * 12.9898 + 1.0) * 43758.5453
    return v - torch.floor(v)


def bn_name(conv):
    return "bn_conv1" if conv == "conv1" else "bn" + conv[len("res"):]


def layout(depth, width):
    """(stem, blocks); a block is (name, [convs], shortcut or None); a conv is
    (name, k, cin, cout, stride, pad, relu)."""
    stem = ("conv1", 7, 3, width, 2, 3, True)
    blocks = []
    cin = width
    for s, n in enumerate(STAGES[depth]):
        f = width << s
        for i in range(n):
            stride = 2 if i == 0 and s != 0 else 1
            name = "res%d%s" % (s + 2, chr(97 + i))
            if depth >= 50:
                out = 4 * f
                convs = [(name + "_branch2a", 1, cin, f, 1, 0, True),
                         (name + "_branch2b", 3, f, f, stride, 1, True),
                         (name + "_branch2c", 1, f, out, 1, 0, False)]
                project = cin != out or stride != 1
            else:
                out = f
                convs = [(name + "_branch2a", 3, cin, f, stride, 1, True),
                         (name + "_branch2b", 3, f, f, 1, 1, False)]
                project = cin != out or stride != 1 or (s == 0 and i == 0)
            short = (name + "_branch1", 1, cin, out, stride, 0, False) if project else None
            blocks.append((name, convs, short))
            cin = out
    return stem, blocks, cin


def params_for(depth, width, classes):
    stem, blocks, feat = layout(depth, width)
    P = {}

    def add_conv(c):
        name, k, cin, cout = c[:4]
        P[name + "_weights"] = param_value(name + "_weights", [cout, cin, k, k])
        bn = bn_name(name)
        for suf in ("_scale", "_offset", "_mean", "_variance"):
            P[bn + suf] = param_value(bn + suf, [cout])

    add_conv(stem)
    for _, convs, short in blocks:
        for c in convs:
            add_conv(c)
        if short:
            add_conv(short)
    P["fc_0.w_0"] = param_value("fc_0.w_0", [feat, classes])
    P["fc_0.b_0"] = param_value("fc_0.b_0", [classes])
    return P


def shift(x, T):
    nt, c, h, w = x.shape
    x = x.view(nt // T, T, c, h, w)
    c1, c2 = int(c * 0.125), int(c * 0.25)
    out = torch.zeros_like(x)
    out[:, 1:, :c1] = x[:, :-1, :c1]
    out[:, :-1, c1:c2] = x[:, 1:, c1:c2]
    out[:, :, c2:] = x[:, :, c2:]
    return out.view(nt, c, h, w)


def forward(case, P, train, running):
    depth, width, T = case["depth"], case["width"], case["seg_num"]
    N, H, W = case["batch"], case["height"], case["width_px"]
    stem, blocks, feat = layout(depth, width)
    x = input_value(N * T * 3 * H * W).view(N * T, 3, H, W)

    def conv_bn(x, c):
        name, k, cin, cout, stride, pad, relu = c
        y = F.conv2d(x, P[name + "_weights"], stride=stride, padding=pad)
        bn = bn_name(name)
        if train:
            mean = y.mean(dim=(0, 2, 3))
            var = y.var(dim=(0, 2, 3), unbiased=False)
            running[bn + "_mean"] = 0.9 * P[bn + "_mean"].detach() + 0.1 * mean.detach()
            running[bn + "_variance"] = 0.9 * P[bn + "_variance"].detach() + 0.1 * var.detach()
        else:
            mean, var = P[bn + "_mean"], P[bn + "_variance"]
        y = (y - mean[None, :, None, None]) / torch.sqrt(var + EPS)[None, :, None, None]
        y = y * P[bn + "_scale"][None, :, None, None] + P[bn + "_offset"][None, :, None, None]
        return F.relu(y) if relu else y

    h = conv_bn(x, stem)
    h = F.max_pool2d(h, 3, 2, 1)
    for _, convs, short in blocks:
        inp = h
        h = shift(h, T)
        for c in convs:
            h = conv_bn(h, c)
        sc = conv_bn(inp, short) if short else inp
        h = F.relu(h + sc)
    h = h.mean(dim=(2, 3))
    if train:
        mask = (dropout_uniform(h.numel()) >= 0.5).to(torch.float64).view(h.shape)
        h = h * mask
    else:
        h = h * 0.5
    h = h.view(N, T, feat).mean(dim=1)
    logits = h @ P["fc_0.w_0"] + P["fc_0.b_0"]
    probs = torch.softmax(logits, dim=1)
    labels = torch.tensor(case["labels"])
    loss = -torch.log(probs[torch.arange(N), labels]).mean()
    return loss, probs


def summary(t):
    flat = t.detach().reshape(-1)
    n = flat.numel()
    idx = sorted({(k * n) // 7 for k in range(7)} | {n - 1})
    return {"sum": flat.sum().item(), "l2": flat.norm().item(),
            "samples": [[i, flat[i].item()] for i in idx]}


def run(case):
    P = params_for(case["depth"], case["width"], case["classes"])
    out = {"case": case}
    loss, probs = forward(case, P, False, {})
    out["eval"] = {"loss": loss.item(), "probs": probs.reshape(-1).tolist()}
    for v in P.values():
        v.requires_grad_(True)
    running = {}
    loss, probs = forward(case, P, True, running)
    loss.backward()
    out["train"] = {"loss": loss.item(), "probs": probs.reshape(-1).tolist()}
    out["grads"] = {k: summary(v.grad) for k, v in P.items()
                    if not (k.endswith("_mean") or k.endswith("_variance"))}
    out["running"] = {k: summary(v) for k, v in running.items()}
    return out


CASES = [
    {"name": "tsm_r18_w8", "depth": 18, "width": 8, "seg_num": 2, "batch": 2,
     "height": 16, "width_px": 16, "classes": 5, "labels": [3, 1]},
    {"name": "tsm_r50_w8", "depth": 50, "width": 8, "seg_num": 4, "batch": 1,
     "height": 32, "width_px": 32, "classes": 7, "labels": [6]},
]

if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    golden = {"generator": "nn/testdata/torch_tsm.py", "torch": torch.__version__,
              "cases": [run(c) for c in CASES]}
    path = os.path.join(here, "tsm_torch_golden.json")
    with open(path + ".tmp", "w") as f:
        json.dump(golden, f, separators=(",", ":"))
    os.replace(path + ".tmp", path)
    print("wrote", path, file=sys.stderr)
