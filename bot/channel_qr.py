"""A channel code's QR image, drawn here (segno) from the link WeCom answered for it, so the console shows and
downloads it without fetching anything from WeCom's image host: a PNG to send, and an A6-sized SVG poster
with the receiving staff member's name and the channel to print for a shop counter or a roadshow."""

from __future__ import annotations

import io
from html import escape

import segno

POSTER_WIDTH, POSTER_HEIGHT = 420, 594  # A-series proportions (1 : √2), in CSS pixels


def png(link: str, *, scale: int = 8) -> bytes:
    out = io.BytesIO()
    segno.make(link, error="m").save(out, kind="png", scale=scale, border=2)
    return out.getvalue()


def poster_svg(link: str, *, title: str, staff_line: str, note: str = "微信扫一扫，添加企业微信") -> str:
    """An SVG poster: the title (the company or campaign), the QR code, who answers, and the call to action."""
    qr = segno.make(link, error="m")
    scale = 8
    size = qr.symbol_size(scale=scale, border=2)[0]
    x, y = (POSTER_WIDTH - size) // 2, 130
    buffer = io.BytesIO()
    qr.save(buffer, kind="svg", scale=scale, border=2, xmldecl=False, svgns=False, svgclass=None, lineclass=None,
            omitsize=False)
    inner = buffer.getvalue().decode()
    inner = inner.replace("<svg", f'<svg x="{x}" y="{y}"', 1)
    font = "'Noto Sans CJK SC','PingFang SC','Microsoft YaHei',sans-serif"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{POSTER_WIDTH}" height="{POSTER_HEIGHT}" '
        f'viewBox="0 0 {POSTER_WIDTH} {POSTER_HEIGHT}" font-family="{font}">'
        f'<rect width="100%" height="100%" fill="#ffffff"/>'
        f'<rect width="100%" height="96" fill="#15305c"/>'
        f'<text x="50%" y="58" fill="#ffffff" font-size="26" font-weight="700" text-anchor="middle">{escape(title)}</text>'
        f'<rect x="{x - 12}" y="{y - 12}" width="{size + 24}" height="{size + 24}" rx="12" fill="none" '
        f'stroke="#d0d7e2"/>{inner}'
        f'<text x="50%" y="{y + size + 56}" fill="#15305c" font-size="22" font-weight="700" '
        f'text-anchor="middle">{escape(staff_line)}</text>'
        f'<text x="50%" y="{y + size + 92}" fill="#5b6b80" font-size="16" text-anchor="middle">{escape(note)}</text>'
        f'</svg>')
