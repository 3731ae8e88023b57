"""The deposit receipt (定金结算清单) as PDF, beside the printable HTML page.

Drawn with ReportLab (BSD, maintained) and its built-in Adobe CID font ``STSong-Light`` for Chinese: the font
is not embedded (every PDF reader ships the Adobe CJK fonts or a substitute), so no font file, no download
and a few kilobytes per receipt. Figures and numbers are set in Helvetica so that they can be read back
exactly (the test opens the PDF and finds the amounts).

The caller (the console) gathers the figures, already masked where they name a person, into a
:class:`ReceiptData`; this module only lays them out on A4 or A5.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, A5
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

CJK_FONT = "STSong-Light"
LATIN_FONT = "Helvetica"
NOTE = "定金在贷款放款后结算时抵扣服务费；未放款的，按协议约定办理退还。"


@dataclass(frozen=True)
class ReceiptData:
    receipt_number: str  # D000123
    agreement_number: str
    customer: str  # masked
    phone: str  # masked
    sales: str
    case_officer: str
    agreed: str  # yuan text, e.g. "5,000.00"
    received: str
    method: str
    received_date: str
    reference: str
    confirmed_by: str
    refunded: str
    held: str
    printed_at: str
    refunds: list[tuple[str, str, str]] = field(default_factory=list)  # (when, amount, status)


def _font() -> str:
    if CJK_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
    return CJK_FONT


def _cell(text: str, size: float, *, bold: bool = False) -> Paragraph:
    """Chinese in the CID font, plain ASCII (amounts, numbers, dates) in Helvetica."""
    ascii_only = all(ord(ch) < 128 for ch in text)
    font = (f"{LATIN_FONT}-Bold" if bold else LATIN_FONT) if ascii_only else _font()
    style = ParagraphStyle("c", fontName=font, fontSize=size, leading=size * 1.35)
    return Paragraph(text.replace("&", "&amp;").replace("<", "&lt;") or "—", style)


def render(data: ReceiptData, *, paper: str = "A4") -> bytes:
    """The receipt as PDF bytes (one page)."""
    size = A5 if paper.upper() == "A5" else A4
    scale = 0.8 if size == A5 else 1.0
    body = 10.5 * scale
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=size, leftMargin=15 * mm * scale, rightMargin=15 * mm * scale,
                            topMargin=15 * mm * scale, bottomMargin=15 * mm * scale,
                            title=f"定金结算清单 {data.agreement_number}", author="财务中心")
    cjk = _font()
    title = ParagraphStyle("t", fontName=cjk, fontSize=18 * scale, leading=24 * scale, alignment=1)
    meta = ParagraphStyle("m", fontName=cjk, fontSize=9 * scale, leading=13 * scale, alignment=1,
                          textColor=colors.HexColor("#555555"))
    rows = [
        ("客户", data.customer, "手机", data.phone),
        ("营销专员", data.sales, "做单专员", data.case_officer),
        ("约定定金（元）", data.agreed, "本次收取（元）", data.received),
        ("收款方式", data.method, "收款日期", data.received_date),
        ("流水号", data.reference, "财务确认", data.confirmed_by),
        ("已退金额（元）", data.refunded, "在账金额（元）", data.held),
    ]
    table = Table([[_cell(a, body), _cell(b, body, bold=(a.startswith("约定定金"))), _cell(c, body),
                    _cell(d, body, bold=(c.startswith("本次收取")))] for a, b, c, d in rows],
                  colWidths=[x * (size[0] - 30 * mm * scale) for x in (0.22, 0.28, 0.22, 0.28)])
    table.setStyle(TableStyle([
        ("GRID", (0, 0), (-1, -1), 0.5, colors.HexColor("#888888")),
        ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#f2f2f2")),
        ("BACKGROUND", (2, 0), (2, -1), colors.HexColor("#f2f2f2")),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("TOPPADDING", (0, 0), (-1, -1), 5 * scale), ("BOTTOMPADDING", (0, 0), (-1, -1), 5 * scale),
    ]))
    story = [
        Paragraph("定金结算清单", title),
        Paragraph(f"协议编号 {data.agreement_number} · 清单编号 {data.receipt_number} · 打印日期 {data.printed_at}", meta),
        Spacer(1, 6 * mm * scale), table,
    ]
    if data.refunds:
        story += [Spacer(1, 4 * mm * scale), _cell("退款记录", body + 1)]
        story += [_cell(f"{when} · {amount} · {status}", body) for when, amount, status in data.refunds]
    story += [Spacer(1, 5 * mm * scale), _cell(NOTE, body - 1), Spacer(1, 14 * mm * scale)]
    signs = Table([[_cell("客户签字：", body), _cell("经办人：", body), _cell("财务：", body)]],
                  colWidths=[(size[0] - 30 * mm * scale) / 3] * 3)
    story.append(signs)
    doc.build(story)
    return out.getvalue()
