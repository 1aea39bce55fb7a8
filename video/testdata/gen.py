#!/usr/bin/env python3
"""Writes the fixtures of video/*_test.go with Pillow, independently of the Go code.

Run from this directory with Debian's python3 and python3-pil (Pillow 9.4.0 made the
committed files):  apt-get install python3-pil && python3 gen.py

  pil_resize.json  a pseudo-random RGB image and what Pillow's Image.resize(...,
                   Image.BILINEAR) and Image.crop (float boxes) make of it
  clip_py2.pkl     (video_id, label, [JPEG bytes]) as Python 2's cPickle writes it at
                   protocol 2 (str as SHORT_BINSTRING / BINSTRING), assembled by hand
  clip_py3p2.pkl   the same tuple pickled by Python 3 at protocol 2 (bytes become
                   _codecs.encode(str, 'latin1') calls)
  clip_py3p4.pkl   Python 3, protocol 4 (FRAME, SHORT_BINUNICODE, BINBYTES, MEMOIZE)
  clip_frames.json Pillow's decode of each JPEG frame, RGB
"""
import base64, io, json, pickle, struct
import PIL
from PIL import Image

def b64(b):
    return base64.b64encode(bytes(b)).decode()

def src_image(w, h):
    # xorshift32, so the Go test could rebuild it; the pixels are stored anyway.
    s = 2463534242
    pix = bytearray()
    for i in range(w * h * 3):
        s ^= (s << 13) & 0xffffffff
        s ^= s >> 17
        s ^= (s << 5) & 0xffffffff
        # smooth gradient plus noise, so both resampling and rounding matter
        y, x = divmod(i // 3, w)
        pix.append(((x * 255) // w + (y * 127) // h + (s & 63)) % 256)
    return Image.frombytes('RGB', (w, h), bytes(pix))

def resize_cases():
    im = src_image(37, 23)
    cases = []
    for (w, h) in [(16, 29), (91, 50), (20, 11), (37, 40), (50, 23), (37, 23), (8, 5), (120, 9)]:
        out = im.resize((w, h), Image.BILINEAR)
        cases.append({'op': 'resize', 'w': w, 'h': h, 'pix': b64(out.tobytes())})
    for box in [(2.5, 1.5, 27.5, 18.5), (3.5, 0.5, 28.5, 17.5), (0.25, 2.75, 30.25, 22.75), (4, 2, 29, 19)]:
        c = im.crop(box)
        out = c.resize((31, 31), Image.BILINEAR)
        cases.append({'op': 'crop_resize', 'box': box, 'cw': c.size[0], 'ch': c.size[1],
                      'w': 31, 'h': 31, 'pix': b64(out.tobytes())})
    return {'pillow': PIL.__version__, 'src': {'w': im.size[0], 'h': im.size[1], 'pix': b64(im.tobytes())},
            'cases': cases}

def jpeg_frames():
    frames = []
    for k in range(5):
        im = Image.new('RGB', (32, 24))
        px = im.load()
        for y in range(24):
            for x in range(32):
                px[x, y] = ((x * 8 + k * 40) % 256, (y * 10 + k * 20) % 256, (k * 50 + (x ^ y) * 4) % 256)
        buf = io.BytesIO()
        # JPEG tables alone pass 255 bytes, so every frame is a BINSTRING in Python 2.
        im.save(buf, 'JPEG', quality=95 if k != 1 else 5)
        frames.append(buf.getvalue())
    return frames

def py2_pickle(vid, label, frames):
    # What Python 2's cPickle.dumps((vid, label, frames), 2) writes for str items.
    def s(b):
        return (b'U' + struct.pack('<B', len(b)) if len(b) < 256 else b'T' + struct.pack('<i', len(b))) + b
    out = b'\x80\x02' + s(vid) + b'q\x01' + b'K' + struct.pack('<B', label)
    out += b']q\x02(' 
    memo = 3
    for f in frames:
        out += s(f) + b'q' + struct.pack('<B', memo)
        memo += 1
    out += b'e\x87q' + struct.pack('<B', memo) + b'.'
    return out

def main():
    with open('pil_resize.json', 'w') as f:
        json.dump(resize_cases(), f)
    frames = jpeg_frames()
    assert all(len(b) >= 256 for b in frames)  # BINSTRING; the short video_id is SHORT_BINSTRING
    p2 = py2_pickle(b'vid_py2', 7, frames)
    assert pickle.loads(p2, encoding='bytes') == (b'vid_py2', 7, frames)
    open('clip_py2.pkl', 'wb').write(p2)
    open('clip_py3p2.pkl', 'wb').write(pickle.dumps(('vid_py3p2', 300, frames), protocol=2))
    open('clip_py3p4.pkl', 'wb').write(pickle.dumps(('vid_py3p4', 0, frames), protocol=4))
    dec = [b64(Image.open(io.BytesIO(b)).convert('RGB').tobytes()) for b in frames]
    with open('clip_frames.json', 'w') as f:
        json.dump({'w': 32, 'h': 24, 'frames': dec}, f)

main()
