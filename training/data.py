"""Image-folder datasets of aligned faces, as written by `facerec align`.

Layout: <root>/<Person>/<image>; one class per sub-folder, sorted by name.
Images are read as 8-bit BGR (the engine's order). Readers: binary PGM/PPM and
8-bit PNG are decoded here (no imaging library is needed for them); JPEG goes
through Pillow when installed, else ffmpeg (which setup.sh installs).

Normalisation, applied in __getitem__: value = (pixel - mean) / std, pixel in
0..255 in the stated channel order. The same three numbers go into the
checkpoint and the exported manifest entry, so the C++ engine feeds the
network exactly what it was trained on.

Crops whose size differs from the model's input (e.g. AT&T's 92x112) are
stretched to input_size x input_size with area interpolation; that matches
the C++ Embedder, which resizes crops with cv2.INTER_AREA.
"""
import os
import struct
import subprocess
import zlib

import numpy as np
import torch
import torch.nn.functional as F

IMAGE_EXTS = {".pgm", ".ppm", ".pnm", ".png", ".jpg", ".jpeg", ".bmp"}

# Our own models: BGR, 0..255 mapped to [-1, 1].
DEFAULT_NORM = {"channels": "BGR", "mean": [127.5, 127.5, 127.5], "std": [127.5, 127.5, 127.5]}


def _read_pnm(data):
    # Header: magic, width, height, maxval, separated by whitespace/comments.
    fields, pos = [], 0
    while len(fields) < 4:
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    pos += 1  # the single whitespace byte before the raster
    magic, w, h, maxval = fields[0], int(fields[1]), int(fields[2]), int(fields[3])
    if maxval > 255:
        raise ValueError("16-bit PNM is not supported")
    ch = {b"P5": 1, b"P6": 3}.get(magic)
    if ch is None:
        raise ValueError(f"unsupported PNM type {magic!r}")
    img = np.frombuffer(data, np.uint8, w * h * ch, pos).reshape(h, w, ch)
    return _to_bgr(img, rgb=True)


def _read_png(data):
    pos, chunks, ihdr = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    w, h, depth, ctype, _, _, interlace = ihdr
    if depth != 8 or interlace or ctype not in (0, 2, 4, 6):
        raise ValueError("only 8-bit, non-interlaced grey/RGB/RGBA PNG is supported")
    ch = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
    raw = np.frombuffer(zlib.decompress(b"".join(chunks)), np.uint8).reshape(h, 1 + w * ch)
    out = np.zeros((h, w * ch), np.int32)
    prev = np.zeros(w * ch, np.int32)
    for y in range(h):
        f, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        if f == 0:
            cur = line
        elif f == 2:
            cur = (line + prev) & 255
        else:  # Sub, Average, Paeth depend on the reconstructed left pixel
            cur = np.zeros_like(line)
            for x in range(w * ch):
                a = cur[x - ch] if x >= ch else 0
                b = prev[x]
                c = prev[x - ch] if x >= ch else 0
                if f == 1:
                    p = a
                elif f == 3:
                    p = (a + b) // 2
                else:
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[x] = (line[x] + p) & 255
        out[y] = cur
        prev = cur
    img = out.astype(np.uint8).reshape(h, w, ch)
    if ch in (2, 4):
        img = img[:, :, :ch - 1]
    return _to_bgr(img, rgb=True)


def _to_bgr(img, rgb):
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    elif rgb:
        img = img[:, :, ::-1]
    return np.ascontiguousarray(img)


def _read_with_pillow_or_ffmpeg(path):
    try:
        from PIL import Image  # optional
        with Image.open(path) as im:
            return _to_bgr(np.asarray(im.convert("RGB")), rgb=True)
    except ImportError:
        pass
    # ffmpeg writes binary PPM to stdout; slow per file, fine for small sets.
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-f", "image2pipe", "-vcodec", "ppm", "-"],
                         check=True, capture_output=True).stdout
    return _read_pnm(out)


def read_bgr(path):
    """Image file -> H x W x 3 uint8 BGR."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] in (b"P5", b"P6"):
        return _read_pnm(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return _read_png(data)
    return _read_with_pillow_or_ffmpeg(path)


def write_png(path, bgr):
    """H x W x 3 uint8 BGR -> an RGB PNG (lossless, so the C++ engine reads the same pixels)."""
    h, w, _ = bgr.shape
    rgb = np.ascontiguousarray(bgr[:, :, ::-1])
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def resize_bgr(bgr, size):
    """Stretch to size x size with area interpolation (uint8 in, uint8 out)."""
    if bgr.shape[0] == size and bgr.shape[1] == size:
        return bgr
    t = torch.from_numpy(bgr).permute(2, 0, 1).float()[None]
    t = F.interpolate(t, size=(size, size), mode="area")
    return t[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def to_tensor(bgr, norm=DEFAULT_NORM):
    """uint8 BGR H x W x 3 -> float 3 x H x W in the model's channel order and scaling."""
    img = bgr if norm["channels"] == "BGR" else bgr[:, :, ::-1]
    t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float()
    mean = torch.tensor(norm["mean"], dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor(norm["std"], dtype=torch.float32).view(3, 1, 1)
    return (t - mean) / std


def list_image_folder(root, people=None):
    """[(path, class index)], class names. people: restrict to these sub-folder names."""
    names = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    if people is not None:
        keep = set(people)
        names = [n for n in names if n in keep]
    samples = []
    for label, name in enumerate(names):
        folder = os.path.join(root, name)
        for f in sorted(os.listdir(folder)):
            if os.path.splitext(f)[1].lower() in IMAGE_EXTS:
                samples.append((os.path.join(folder, f), label))
    return samples, names


class FaceFolder(torch.utils.data.Dataset):
    """Aligned faces, one class per sub-folder; horizontal flip with p = 0.5 when flip=True.

    All images are decoded once and held as uint8 (112x112x3 = 37 KB each),
    since the sets this runs on fit in memory and decoding dominates small CPU runs."""

    def __init__(self, root, input_size=112, norm=DEFAULT_NORM, flip=True, people=None):
        self.samples, self.classes = list_image_folder(root, people)
        if not self.samples:
            raise ValueError(f"no images under {root}")
        self.input_size, self.norm, self.flip = input_size, norm, flip
        self.images = [resize_bgr(read_bgr(p), input_size) for p, _ in self.samples]

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        img = self.images[i]
        if self.flip and torch.rand(()) < 0.5:
            img = img[:, ::-1]
        return to_tensor(img, self.norm), self.samples[i][1]
