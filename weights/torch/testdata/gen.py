# Generates the checkpoints weights/torch's tests read. Run with Debian's
# python3-torch (1.13): /usr/bin/python3 gen.py
import collections, os, torch

torch.manual_seed(0)
sd = collections.OrderedDict()
sd["w32"] = torch.arange(6, dtype=torch.float32).reshape(2, 3) / 4
sd["w16"] = (torch.arange(4, dtype=torch.float32) / 3).half()
sd["wbf"] = (torch.arange(4, dtype=torch.float32) / 3).bfloat16()
sd["n"] = torch.tensor(7, dtype=torch.int64)
sd["t"] = sd["w32"].t()          # a non-contiguous view of w32's storage
sd["s"] = sd["w32"][1]           # a view at an offset
ck = {"epoch": 3, "arch": "resnet50", "best_prec1": 71.2, "state_dict": sd}
torch.save(ck, "zip.pth")
torch.save(ck, "legacy.pth", _use_new_zipfile_serialization=False)
torch.save(sd, "bare.pth")

class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))
torch.save({"state_dict": sd, "x": Evil()}, "evil.pth")
torch.save({"state_dict": sd, "x": Evil()}, "evil-legacy.pth", _use_new_zipfile_serialization=False)
