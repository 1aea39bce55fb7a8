"""Generate the .pdparams test files with the pickle opcodes numpy and
Paddle produce, without numpy: stand-in objects carry numpy's module and
names, and reduce exactly as numpy.ndarray, numpy.dtype and numpy scalars
do (ndarray.__reduce__: _reconstruct(ndarray, (0,), b"b") then BUILD with
(1, shape, dtype, is_fortran, raw bytes); dtype: dtype(code, False, True)
then BUILD with (3, byteorder, None, None, None, -1, -1, 0)).

Run in weights/testdata: python3 gen_pdparams.py /path/to/shared/data
It writes p2.pdparams (protocol 2, as fluid.save in Paddle 1.6-1.8 writes
it: bytes as _codecs.encode) and p4.pdparams (protocol 4, as paddle.save
in Paddle 2.x, an OrderedDict with numpy 2's numpy._core path and the
StructuredToParameterName@@ entry)."""
import collections, pickle, struct, sys, types

def mod(name):
    m = types.ModuleType(name)
    sys.modules[name] = m
    return m

np, old, new = mod("numpy"), mod("numpy.core.multiarray"), mod("numpy._core.multiarray")
mod("numpy.core"); mod("numpy._core")

def fn(module, name):
    def f(*a):
        raise NotImplementedError
    f.__module__, f.__name__, f.__qualname__ = module.__name__, name, name
    setattr(module, name, f)
    return f

rec_old, rec_new = fn(old, "_reconstruct"), fn(new, "_reconstruct")
scalar = fn(old, "scalar")

class ndarray: pass
ndarray.__module__ = "numpy"; np.ndarray = ndarray

class dtype:
    def __init__(self, code, order="<"):
        self.code, self.order = code, order
    def __reduce__(self):
        return (dtype, (self.code, False, True), (3, self.order, None, None, None, -1, -1, 0))
dtype.__module__ = "numpy"; np.dtype = dtype

class Arr:
    def __init__(self, shape, code, data, order="<", fortran=False, rec=rec_old):
        self.shape, self.code, self.data, self.order, self.fortran, self.rec = shape, code, data, order, fortran, rec
    def __reduce__(self):
        return (self.rec, (ndarray, (0,), b"b"), (1, self.shape, dtype(self.code, self.order), self.fortran, self.data))

class Scalar:
    def __init__(self, code, data): self.code, self.data = code, data
    def __reduce__(self): return (scalar, (dtype(self.code), self.data))

data = sys.argv[1]
def payload(name, header):
    return open(f"{data}/paddle/resnet50_stem/{name}", "rb").read()[header:]

conv1 = payload("conv1_weights", 30)    # record header: 4+8+4+4 + a 10-byte desc
scale = payload("bn_conv1_scale", 24)   # a 4-byte desc
def entries(rec):
    return [
        ("conv1_weights", Arr((64, 3, 7, 7), "f4", conv1, rec=rec)),
        ("bn_conv1_scale", Arr((64,), "f4", scale, rec=rec)),
        ("half", Arr((3,), "f2", struct.pack("<3e", 1.0, -2.0, 0.5), rec=rec)),
        ("ids", Arr((2, 2), "i8", struct.pack("<4q", 1, -2, 3, 1 << 40), rec=rec)),
        # [[1, 2, 3], [4, 5, 6]] stored column-major
        ("fortran", Arr((2, 3), "f4", struct.pack("<6f", 1, 4, 2, 5, 3, 6), fortran=True, rec=rec)),
        ("big_endian", Arr((2,), "f4", struct.pack(">2f", 1.5, -3), order=">", rec=rec)),
        ("step", Scalar("i8", struct.pack("<q", 7))),
    ]

with open("p2.pdparams", "wb") as f:
    pickle.dump(dict(entries(rec_old)), f, protocol=2)
d = collections.OrderedDict(entries(rec_new))
d["StructuredToParameterName@@"] = {"conv1.weight": "conv1_weights"}
with open("p4.pdparams", "wb") as f:
    pickle.dump(d, f, protocol=4)
