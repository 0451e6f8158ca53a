"""A PNG trend chart of a metric card's last periods, drawn without any imaging library.

Bars for each period (grey where there is no data), a line through the values and a dashed
target line. The labels travel in the Slack message beside the image.
"""

from __future__ import annotations

import itertools
import struct
import zlib
from collections.abc import Sequence

WIDTH, HEIGHT = 640, 260
MARGIN = 24
BACKGROUND = (255, 255, 255)
AXIS = (156, 163, 175)
BAR = (147, 197, 253)
BAR_OFF = (252, 165, 165)
EMPTY = (229, 231, 235)
LINE = (30, 64, 175)
TARGET = (220, 38, 38)

Color = tuple[int, int, int]


class Canvas:
    def __init__(self, width: int, height: int, color: Color = BACKGROUND) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(bytes(color) * (width * height))

    def set(self, x: int, y: int, color: Color) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            i = (y * self.width + x) * 3
            self.pixels[i : i + 3] = bytes(color)

    def rect(self, x0: int, y0: int, x1: int, y1: int, color: Color) -> None:
        x0, x1 = sorted((max(0, x0), min(self.width - 1, x1)))
        y0, y1 = sorted((max(0, y0), min(self.height - 1, y1)))
        row = bytes(color) * (x1 - x0 + 1)
        for y in range(y0, y1 + 1):
            i = (y * self.width + x0) * 3
            self.pixels[i : i + len(row)] = row

    def line(self, x0: int, y0: int, x1: int, y1: int, color: Color, width: int = 2) -> None:
        steps = max(abs(x1 - x0), abs(y1 - y0), 1)
        for s in range(steps + 1):
            x = round(x0 + (x1 - x0) * s / steps)
            y = round(y0 + (y1 - y0) * s / steps)
            for dx in range(width):
                for dy in range(width):
                    self.set(x + dx - width // 2, y + dy - width // 2, color)

    def png(self) -> bytes:
        raw = b"".join(
            b"\x00" + bytes(self.pixels[y * self.width * 3 : (y + 1) * self.width * 3])
            for y in range(self.height)
        )

        def chunk(kind: bytes, data: bytes) -> bytes:
            body = kind + data
            return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 6))
            + chunk(b"IEND", b"")
        )


def trend_png(
    values: Sequence[float | None],
    target: float | None = None,
    lower_is_better: bool = True,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> bytes:
    """A bar-and-line chart of ``values`` (oldest first) with the target as a dashed line."""
    c = Canvas(width, height)
    known = [v for v in values if v is not None]
    top = max([*known, target or 0.0, 0.0]) * 1.15 or 1.0
    plot_h = height - 2 * MARGIN
    base_y = height - MARGIN
    c.line(MARGIN, base_y, width - MARGIN, base_y, AXIS, 1)
    c.line(MARGIN, MARGIN, MARGIN, base_y, AXIS, 1)
    n = max(len(values), 1)
    slot = (width - 2 * MARGIN) / n
    points: list[tuple[int, int]] = []
    for i, v in enumerate(values):
        x0 = round(MARGIN + i * slot + slot * 0.2)
        x1 = round(MARGIN + (i + 1) * slot - slot * 0.2)
        if v is None:
            c.rect(x0, base_y - 4, x1, base_y - 1, EMPTY)
            continue
        y = round(base_y - (v / top) * plot_h)
        off = target is not None and (v >= target if lower_is_better else v <= target)
        c.rect(x0, y, x1, base_y - 1, BAR_OFF if off else BAR)
        points.append(((x0 + x1) // 2, y))
    for (xa, ya), (xb, yb) in itertools.pairwise(points):
        c.line(xa, ya, xb, yb, LINE, 3)
    for x, y in points:
        c.rect(x - 3, y - 3, x + 3, y + 3, LINE)
    if target is not None:
        ty = round(base_y - (target / top) * plot_h)
        for x in range(MARGIN, width - MARGIN, 12):
            c.line(x, ty, min(x + 6, width - MARGIN), ty, TARGET, 2)
    return c.png()
