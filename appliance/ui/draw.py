"""A :class:`~appliance.ui.screens.Screen` drawn into the panel's 128x64 pixels.

The panel is one bit deep, so text is drawn without anti-aliasing, with a
CJK font that carries hand-made bitmaps at small sizes: WenQuanYi Zen Hei
has them at 12 px (Debian's fonts-wqy-zenhei, which the image installs);
GNU Unifont is a bitmap font at 16 px (fonts-unifont). Rows are laid out
from the font's own height, so either fits: a title row, a rule, and as
many body rows as fit below (4 at 12 px, 3 at 16 px). A line too wide for
the panel is cut with an ellipsis rather than running off the glass.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from appliance.ui.screens import Screen

log = logging.getLogger(__name__)

WIDTH, HEIGHT = 128, 64
#: Fonts tried in order when the config names none: (path, pixel size).
CJK_FONTS = (
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 12),
    ("/usr/share/fonts/opentype/unifont/unifont.otf", 16),
)


class FontMissing(Exception):
    """No CJK font is installed: the panel can only show English."""


#: Text whose ink spans the full height a row needs: CJK, capitals, descenders.
_INK_SAMPLE = "额余Apg"
BODY_ROWS = 3


@dataclass(frozen=True)
class PanelFont:
    font: ImageFont.ImageFont | ImageFont.FreeTypeFont
    size: int
    cjk: bool
    path: str

    @property
    def ink(self) -> tuple[int, int]:
        """Top and bottom (exclusive) of the ink of a line drawn at y=0."""
        _, top, _, bottom = self.font.getbbox(_INK_SAMPLE)
        return top, bottom

    @property
    def row(self) -> int:
        """Pixels per text row: the ink's full height."""
        top, bottom = self.ink
        return bottom - top

    @property
    def ruled(self) -> bool:
        """Is there room for a rule under the title (with the body rows below)?"""
        return HEIGHT - self.row - 2 >= BODY_ROWS * self.row

    @property
    def body_top(self) -> int:
        return self.row + (2 if self.ruled else 0)

    def width(self, text: str) -> int:
        return int(self.font.getlength(text))


def load_font(path: str = "", size: int | None = None) -> PanelFont:
    """The configured font, else the first of :data:`CJK_FONTS` installed, else Pillow's own (no CJK)."""
    candidates = [(path, size or 12)] if path else list(CJK_FONTS)
    for candidate, px in candidates:
        if Path(candidate).is_file():
            try:
                return PanelFont(ImageFont.truetype(candidate, px), px, True, candidate)
            except OSError as exc:
                log.warning("panel font %s cannot be read (%s)", candidate, exc)
    if path:
        log.warning("panel font %s not found; trying the built-in list", path)
        return load_font("", None)
    log.warning("no CJK font for the panel (install fonts-wqy-zenhei): it shows English only")
    return PanelFont(ImageFont.load_default(size=11), 11, False, "(Pillow default)")


def fit(text: str, font: PanelFont, width: int) -> str:
    """``text`` cut to ``width`` pixels, ending in '…' when cut."""
    if font.width(text) <= width:
        return text
    while text and font.width(text + "…") > width:
        text = text[:-1]
    return text + "…"


def _bars(draw: ImageDraw.ImageDraw, right: int, top: int, height: int, bars: int) -> int:
    """Four rising bars ending at x=``right``; filled up to ``bars``. Returns the left edge."""
    left = right - 4 * 3 + 1
    for i in range(4):
        x = left + i * 3
        h = 3 + i * (height - 3) // 3
        box = (x, top + height - h, x + 1, top + height - 1)
        if i < bars:
            draw.rectangle(box, fill=1)
        else:
            draw.point((x, top + height - 1), fill=1)
    return left


def render(screen: Screen, font: PanelFont) -> Image.Image:
    """The screen as a 1-bit 128x64 image (1 = lit)."""
    image = Image.new("1", (WIDTH, HEIGHT), 0)
    draw = ImageDraw.Draw(image)
    draw.fontmode = "1"  # no anti-aliasing: the panel has no grey
    f, row = font.font, font.row
    lift = font.ink[0]  # draw each line this much higher, so its ink starts at the row's top

    def text(x: int, y: int, line: str, width: int, fill: int = 1) -> None:
        draw.text((x, y - lift), fit(line, font, width), font=f, fill=fill)

    if screen.framed:
        draw.rectangle((0, 0, WIDTH - 1, row), fill=1)
        text(2, 1, screen.title, WIDTH - 4, fill=0)
        draw.rectangle((0, 0, WIDTH - 1, HEIGHT - 1), outline=1)
        inset = 2
    else:
        title_right = WIDTH
        if screen.bars is not None:
            title_right = _bars(draw, WIDTH - 1, 1, min(row, 12) - 2, screen.bars) - 2
        if screen.badge:
            badge = fit(screen.badge, font, 24)
            title_right -= font.width(badge)
            text(title_right, 0, badge, 24)
            title_right -= 3
        text(1, 0, screen.title, title_right - 1)
        if font.ruled:
            draw.line((0, row, WIDTH - 1, row), fill=1)
        inset = 1  # some CJK glyphs start a pixel left of their origin
    top = font.body_top + (1 if screen.framed else 0)
    rows = BODY_ROWS
    strip = HEIGHT - (top + rows * row)  # pixels left under the body rows
    bar_in_strip = screen.progress is not None and strip >= 5
    lines = list(screen.lines[:rows if bar_in_strip or screen.progress is None else rows - 1])
    for i, line in enumerate(lines):
        y = top + i * row
        if screen.selected == i:
            draw.rectangle((0, y, WIDTH - 1, y + row - 1), fill=1)
            text(2, y, line, WIDTH - 4, fill=0)
        else:
            text(inset, y, line, WIDTH - 2 * inset)
    if screen.progress is not None:
        y0 = HEIGHT - strip if bar_in_strip else top + (rows - 1) * row + 2
        y1 = HEIGHT - 1 if bar_in_strip else min(HEIGHT - 1, y0 + row - 4)
        draw.rectangle((0, y0, WIDTH - 1, y1), outline=1)
        filled = int(round((WIDTH - 4) * max(0.0, min(1.0, screen.progress))))
        if filled and y1 - y0 >= 4:
            draw.rectangle((2, y0 + 2, 1 + filled, y1 - 2), fill=1)
        elif filled:
            draw.line((2, y0 + 1, 1 + filled, y0 + 1), fill=1)
    return image
