"""The bad-image zoo and a tiny trained run, shared by the reliability tests."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that declares width x height (8-bit grey) in a few bytes: nothing to decode behind it."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def make_zoo(folder: Path, good: Path) -> dict:
    """name -> (path, expected: "ok" | "bad"): every kind of file a user may give."""
    folder.mkdir(parents=True, exist_ok=True)
    rgb = np.asarray(Image.open(good).convert("RGB"))
    zoo = {}

    def add(name, expected, write):
        p = folder / name
        write(p)
        zoo[name] = (p, expected)

    add("zero_bytes.png", "bad", lambda p: p.write_bytes(b""))
    add("truncated.png", "bad", lambda p: p.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2]))
    add("text_as_png.png", "bad", lambda p: p.write_text("this is not an image\n" * 20))
    add("sixteen_bit.png", "ok", lambda p: Image.fromarray((rgb[..., 0].astype(np.uint16) * 257)).save(p))
    add("cmyk.jpg", "ok", lambda p: Image.fromarray(rgb).convert("CMYK").save(p))
    add("palette.png", "ok", lambda p: Image.fromarray(rgb).convert("P").save(p))
    add("rgba.png", "ok", lambda p: Image.fromarray(rgb).convert("RGBA").save(p))

    def exif(p):
        im = Image.fromarray(rgb)
        ex = im.getexif()
        ex[0x0112] = 6  # rotate 90
        im.save(p, exif=ex.tobytes())

    add("exif_rotated.jpg", "ok", exif)
    add("pixel_bomb.png", "bad", lambda p: png_header_only(p, 12000, 12000))
    add("loop.png", "bad", lambda p: os.symlink(p.name, p))  # a link to itself: a symlink loop
    for w, h in ((1, 1), (2, 2), (3, 3), (4, 4), (1, 64), (2, 64), (4, 64)):
        add(f"tiny_{w}x{h}.png", "tiny", lambda p, w=w, h=h: Image.fromarray(rgb[:h, :w].copy()).save(p))
    return zoo


def jpeg_bytes(width: int, height: int, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (120, 30, 200)).save(buf, "JPEG", quality=quality)
    return buf.getvalue()
