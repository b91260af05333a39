#!/usr/bin/env python3
"""Counts a PNG's pixels near given colours (standard library only; 8-bit RGB/RGBA, non-interlaced, as
Chromium's screenshots are). Usage: png-colors.py FILE.png '#rrggbb' ... → {"#rrggbb": n, ..., "non_white": n}."""
import json
import struct
import sys
import zlib


def pixels(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, "unsupported PNG layout"
    bpp = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    previous, out, i = bytearray(stride), [], 0
    for _ in range(height):
        kind, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = previous[x]
            c = previous[x - bpp] if x >= bpp else 0
            if kind == 1:
                line[x] = (line[x] + a) & 255
            elif kind == 2:
                line[x] = (line[x] + b) & 255
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out.append(line)
        previous = line
    return out, bpp


def main():
    rows, bpp = pixels(sys.argv[1])
    targets = [(h, tuple(int(h[k:k + 2], 16) for k in (1, 3, 5))) for h in sys.argv[2:]]
    counts = {h: 0 for h, _ in targets}
    non_white = 0
    for line in rows:
        for x in range(0, len(line), bpp):
            r, g, b = line[x], line[x + 1], line[x + 2]
            if r < 245 or g < 245 or b < 245:
                non_white += 1
            for h, (tr, tg, tb) in targets:
                if abs(r - tr) <= 24 and abs(g - tg) <= 24 and abs(b - tb) <= 24:
                    counts[h] += 1
    counts["non_white"] = non_white
    print(json.dumps(counts))


main()
