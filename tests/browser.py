"""A real headless browser for tests that check what a person sees (DESIGN.md §11): Debian's
chromium, driven from the command line (no Python dependency), and the stdlib readers for
what it gives back (a PNG, a DOM).

Every call has a deadline: a browser that hangs is killed with its whole process group
(only the processes this call started) and the test fails saying so. Where chromium is
missing, or cannot start or render a page in time, :func:`browser` skips the test with the
reason.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import zlib
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

DEADLINE = 60.0  # seconds for one browser run; a cold start here takes under 2
PHONE = (390, 844)  # CSS pixels of a common phone's screen (iPhone 12 to 15)
_CANDIDATES = ("chromium", "chromium-browser")


@dataclass(frozen=True)
class Browser:
    executable: str
    profiles: Path  # a fresh profile per run under it: runs share no state and no lock

    def _run(self, page: Path, *flags: str) -> bytes:
        profile = tempfile.mkdtemp(prefix="profile-", dir=self.profiles)
        command = [
            self.executable,
            "--headless=new",
            "--no-sandbox",  # root in a container has no user namespaces for the sandbox
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-extensions",
            f"--user-data-dir={profile}",
            *flags,
            page.resolve().as_uri(),
        ]
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: killed whole on a timeout
        )
        try:
            out, err = process.communicate(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise BrowserError(f"chromium did not finish within {DEADLINE:.0f} s") from None
        if process.returncode != 0:
            tail = err.decode(errors="replace")[-2000:]
            raise BrowserError(f"chromium exited {process.returncode}: {tail}")
        return out

    def screenshot(self, page: Path, size: tuple[int, int] = PHONE) -> bytes:
        """The PNG of the page's first screen at ``size`` (width, height in CSS pixels)."""
        target = Path(tempfile.mkdtemp(prefix="shot-", dir=self.profiles)) / "screen.png"
        self._run(page, f"--window-size={size[0]},{size[1]}", f"--screenshot={target}")
        return target.read_bytes()

    def dom(self, page: Path, size: tuple[int, int] = PHONE) -> str:
        """The page's DOM after the browser has parsed and laid it out. Its layout is at
        least 500 pixels wide whatever ``size`` asks (headless chromium's smallest window):
        measure a phone's width on a :meth:`screenshot`, which is exact."""
        return self._run(page, f"--window-size={size[0]},{size[1]}", "--dump-dom").decode()


class BrowserError(Exception):
    pass


def browser(tmp: Path) -> Browser:
    """Chromium, once it has shown it can render a page here; else the test is skipped."""
    executable = next(filter(None, map(shutil.which, _CANDIDATES)), None)
    if executable is None:
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run does)")
    tmp.mkdir(parents=True, exist_ok=True)
    found = Browser(executable, tmp)
    probe = tmp / "probe.html"
    probe.write_text("<!DOCTYPE html><p>ready</p>")
    try:
        ready = "ready" in found.dom(probe)
    except (BrowserError, OSError) as error:
        pytest.skip(f"chromium cannot start here: {error}")
    if not ready:
        pytest.skip("chromium started but rendered nothing")
    return found


# -- what the browser gives back ----------------------------------------------------------


@dataclass(frozen=True)
class Picture:
    """A decoded PNG: its size and its pixels as RGB triples, row by row."""

    width: int
    height: int
    rows: list[bytes]  # each width * 3 bytes, RGB

    def at(self, x: int, y: int) -> tuple[int, int, int]:
        row = self.rows[y]
        return (row[3 * x], row[3 * x + 1], row[3 * x + 2])

    def pixels(self) -> list[tuple[int, int, int]]:
        return [
            (row[i], row[i + 1], row[i + 2]) for row in self.rows for i in range(0, len(row), 3)
        ]


def decode_png(data: bytes) -> Picture:
    """A PNG as chromium writes it (8-bit RGB or RGBA, not interlaced), read with the
    stdlib: the chunks, zlib, and the five scanline filters of PNG §9."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    chunks: dict[bytes, list[bytes]] = {}
    at = 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind = data[at + 4 : at + 8]
        body = data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        if zlib.crc32(kind + body) != crc:
            raise ValueError(f"bad CRC in {kind!r}")
        chunks.setdefault(kind, []).append(body)
        at += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"][0])
    if depth != 8 or colour not in (2, 6) or interlace:
        raise ValueError(f"unexpected PNG format: depth {depth}, colour type {colour}")
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(chunks[b"IDAT"]))
    stride = width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        line = _unfilter(
            raw[start], bytearray(raw[start + 1 : start + 1 + stride]), previous, channels
        )
        rows.append(bytes(line) if channels == 3 else bytes(_drop_alpha(line)))
        previous = line
    return Picture(width, height, rows)


def _unfilter(kind: int, line: bytearray, above: bytearray, bpp: int) -> bytearray:
    if kind == 1:  # Sub
        for i in range(bpp, len(line)):
            line[i] = (line[i] + line[i - bpp]) & 0xFF
    elif kind == 2:  # Up
        for i in range(len(line)):
            line[i] = (line[i] + above[i]) & 0xFF
    elif kind == 3:  # Average
        for i in range(len(line)):
            left = line[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + ((left + above[i]) >> 1)) & 0xFF
    elif kind == 4:  # Paeth
        for i in range(len(line)):
            a = line[i - bpp] if i >= bpp else 0
            b = above[i]
            c = above[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            near = a if pa <= pb and pa <= pc else b if pb <= pc else c
            line[i] = (line[i] + near) & 0xFF
    elif kind != 0:
        raise ValueError(f"unknown PNG filter {kind}")
    return line


def _drop_alpha(line: bytearray) -> bytearray:
    out = bytearray()
    for i in range(0, len(line), 4):
        out += line[i : i + 3]
    return out


def near(colour: tuple[int, int, int], hex_colour: str, tolerance: int = 8) -> bool:
    """``colour`` is ``#rrggbb`` give or take ``tolerance`` per channel (colour management
    may move a value by a step or two)."""
    wanted = bytes.fromhex(hex_colour.lstrip("#"))
    return all(abs(got - want) <= tolerance for got, want in zip(colour, wanted, strict=True))


# fmt: off
_BLOCKS = frozenset((
    "address", "article", "aside", "blockquote", "br", "div", "footer", "h1", "h2", "h3",
    "h4", "h5", "h6", "header", "hr", "li", "ol", "p", "pre", "section", "table", "tbody",
    "td", "th", "thead", "tr", "ul",
))
# fmt: on


class _Text(HTMLParser):
    """The text a reader sees: the body's text, block elements apart, no head or scripts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("head", "script", "style", "template"):
            self.hidden += 1
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("head", "script", "style", "template"):
            self.hidden -= 1
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def visible_text(dom: str) -> str:
    """The page's text, one block a line, runs of spaces as one."""
    reader = _Text()
    reader.feed(dom)
    reader.close()
    lines = (
        re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in "".join(reader.parts).split("\n")
    )
    return "\n".join(line for line in lines if line)
