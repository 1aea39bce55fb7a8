"""Write the golden pickles encode_test.go compares Marshal with: each
value of cases() pickled by CPython's pickle.dumps with protocols 2 to 5
("large", which tests framing, with 2 and 4 only).
Values hold no object twice (CPython would share it through the memo).

Run in internal/pickle/testdata: python3 gen.py"""
import pickle

def cases():
    return {
        "scalars": (None, True, False, 0, 255, 256, 65535, 65536, -1, -2**31, 2**31 - 1, 2**31,
                    2**63 - 1, -2**63, 2**70, -2**70, 1.5, -0.0, float("inf")),
        "text": ["", "héllo", "x" * 300, b"", b"\x00\xff\x80", bytes(range(200)) * 2],
        "tuples": [(), (1,), (2, 3), (4, 5, 6), (7, 8, 9, 10)],
        "dict": {"k%d" % i: [i, float(i)] for i in range(1500)},
        "long_list": list(range(2500)),
        "large": ["é" * 33000, bytes(66000), [i / 7 for i in range(8000)]],
    }

for name, v in cases().items():
    for proto in ((2, 4) if name == "large" else (2, 3, 4, 5)):
        with open("%s.p%d.pickle" % (name, proto), "wb") as f:
            f.write(pickle.dumps(v, protocol=proto))
