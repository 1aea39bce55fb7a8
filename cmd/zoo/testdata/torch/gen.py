# Golden files of cmd/zoo/torch_test.go: a narrow TSM-ResNet-50 (base
# width 8, 10 classes) saved as MIT's temporal-shift-module saves it
# (legacy torch.save, DataParallel's module. prefix, {'epoch', 'arch',
# 'state_dict', 'best_prec1'}) and as mmaction2 does (zip, {'meta',
# 'state_dict'}, backbone./cls_head. names, float16 storages), and the
# probabilities PyTorch computes for them, with MIT's and mmaction2's own
# conventions (shift fold 0 <- t+1, fold 1 <- t-1; dropout identity at
# inference; logits averaged over segments), on zoo's input of real
# videos (dumpclip). Run from the repository root with Debian's
# python3-torch 1.13:
#
#   go run ./cmd/zoo/testdata/torch/dumpclip /tmp/clips.f32 \
#       ../shared/data/videos/arm_wrestling.mp4 ../shared/data/videos/archery.avi
#   go run ./cmd/zoo/testdata/torch/dumpclip -clips 2 -crops 3 /tmp/views.f32 \
#       ../shared/data/videos/arm_wrestling.mp4 ../shared/data/videos/archery.avi
#   /usr/bin/python3 cmd/zoo/testdata/torch/gen.py /tmp/clips.f32 /tmp/views.f32
#
# The multi-view reference (mit_views_2x3) is PyTorch's softmax of each of
# zoo's 2 clips x 3 crops views, averaged per video.
import collections, json, sys
import numpy as np
import torch
import torch.nn as nn

T, K, W, SIZE = 8, 10, 8, 224
OUT = "cmd/zoo/testdata/torch/"
torch.manual_seed(16)


class TemporalShift(nn.Module):  # MIT's ops/temporal_shift.py, shift_div 8
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        nt, c, h, w = x.size()
        x = x.view(nt // T, T, c, h, w)
        fold = c // 8
        out = torch.zeros_like(x)
        out[:, :-1, :fold] = x[:, 1:, :fold]  # shift left: frame t takes t+1
        out[:, 1:, fold:2 * fold] = x[:, :-1, fold:2 * fold]  # shift right
        out[:, :, 2 * fold:] = x[:, :, 2 * fold:]
        return self.net(out.view(nt, c, h, w))


class Bottleneck(nn.Module):  # torchvision's
    def __init__(self, cin, f, stride, down):
        super().__init__()
        self.conv1 = TemporalShift(nn.Conv2d(cin, f, 1, bias=False))
        self.bn1 = nn.BatchNorm2d(f)
        self.conv2 = nn.Conv2d(f, f, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(f)
        self.conv3 = nn.Conv2d(f, 4 * f, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(4 * f)
        self.relu = nn.ReLU()
        self.downsample = nn.Sequential(nn.Conv2d(cin, 4 * f, 1, stride, bias=False), nn.BatchNorm2d(4 * f)) if down else None

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + (self.downsample(x) if self.downsample is not None else x))


class Base(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, W, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(W)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = W
        for s, n in enumerate([3, 4, 6, 3]):
            f = W << s
            blocks = []
            for i in range(n):
                stride = 2 if i == 0 and s > 0 else 1
                blocks.append(Bottleneck(cin, f, stride, i == 0))
                cin = 4 * f
            setattr(self, "layer%d" % (s + 1), nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Dropout(0.5)  # MIT's TSN replaces the fc by dropout
        self.features = cin

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for s in range(4):
            x = getattr(self, "layer%d" % (s + 1))(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


class TSN(nn.Module):
    def __init__(self):
        super().__init__()
        self.base_model = Base()
        self.new_fc = nn.Linear(self.base_model.features, K)

    def forward(self, x):  # [N, T, 3, H, W]
        n = x.shape[0]
        logits = self.new_fc(self.base_model(x.reshape(-1, 3, SIZE, SIZE)))
        return logits.view(n, T, K).mean(1)  # consensus: average of logits


clips = torch.from_numpy(np.fromfile(sys.argv[1], dtype="<f4").reshape(-1, T, 3, SIZE, SIZE).copy())
model = TSN()
with torch.no_grad():
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.2, 0.2)
            m.momentum = None  # cumulative: the statistics of the clips below
    model.new_fc.weight.normal_(0, 3 / model.base_model.features ** 0.5)
    model.new_fc.bias.uniform_(-0.5, 0.5)
    model.train()
    model(clips)  # BN statistics from real frames keep activations in range
    model.eval()


def probs(m):
    with torch.no_grad():
        return torch.softmax(m(clips), 1).tolist()


# MIT: legacy format, float32.
mit = {"epoch": 50, "arch": "resnet50", "best_prec1": 71.2,
       "state_dict": collections.OrderedDict(("module." + k, v) for k, v in model.state_dict().items())}
torch.save(mit, OUT + "mit_tsm_r50.pth", _use_new_zipfile_serialization=False)
p_mit = probs(model)
views = torch.from_numpy(np.fromfile(sys.argv[2], dtype="<f4").reshape(-1, T, 3, SIZE, SIZE).copy())
with torch.no_grad():
    p_views = torch.softmax(model(views), 1).view(-1, 6, K).mean(1).tolist()

# mmaction2: zip format, float16 storages; PyTorch runs the rounded values.
def mm_name(k):
    k = k.replace("base_model.", "backbone.").replace("new_fc.", "cls_head.fc_cls.")
    if k.startswith("backbone.conv1.") or k.startswith("backbone.bn1."):
        return k.replace("backbone.conv1.", "backbone.conv1.conv.").replace("backbone.bn1.", "backbone.conv1.bn.")
    parts = k.split(".")
    if parts[1].startswith("layer"):
        rest = ".".join(parts[3:])
        for i in "123":
            if rest.startswith("conv%s.net." % i):
                rest = rest.replace("conv%s.net." % i, "conv%s.conv.net." % i)
            elif rest.startswith("conv%s." % i):
                rest = rest.replace("conv%s." % i, "conv%s.conv." % i)
            elif rest.startswith("bn%s." % i):
                rest = rest.replace("bn%s." % i, "conv%s.bn." % i)
        rest = rest.replace("downsample.0.", "downsample.conv.").replace("downsample.1.", "downsample.bn.")
        return ".".join(parts[:3]) + "." + rest
    return k

half = collections.OrderedDict()
for k, v in model.state_dict().items():
    half[mm_name(k)] = v.half() if v.is_floating_point() else v
torch.save({"meta": {"mmaction2_version": "1.2.0", "epoch": 50}, "state_dict": half}, OUT + "mmaction2_tsm_r50.pth")
with torch.no_grad():
    for k, v in model.state_dict().items():
        if v.is_floating_point():
            v.copy_(v.half().float())
p_mm = probs(model)

json.dump({"videos": ["arm_wrestling.mp4", "archery.avi"], "mit": p_mit, "mmaction2": p_mm, "mit_views_2x3": p_views},
          open(OUT + "probs.json", "w"), indent=1)
print("mit", [max(p) for p in p_mit], "mm", [max(p) for p in p_mm])
