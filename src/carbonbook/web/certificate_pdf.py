"""The voluntary-cancellation certificate (注销证明) as a PDF, for the buyer's files.

Chinese text uses the PDF standard's Adobe-GB1 CID font (STSong-Light): nothing is embedded
and no font file ships with the package; every PDF reader supplies the glyphs. The footer
carries the SHA-256 of the certificate's canonical JSON, the same document the public page
and the API serve, so a printed copy can be checked against the registry.
"""

from __future__ import annotations

import hashlib
import io
import json
from typing import TYPE_CHECKING

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

if TYPE_CHECKING:
    from carbonbook.registry.service import Certificate

FONT = "STSong-Light"
_registered = False


def _font() -> str:
    global _registered  # noqa: PLW0603 - register the CID font once per process
    if not _registered:
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
        _registered = True
    return FONT


def fingerprint(cert: Certificate) -> str:
    canonical = json.dumps(
        cert.to_document(), ensure_ascii=False, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def certificate_pdf(cert: Certificate, *, when: str, url: str) -> bytes:
    """One A4 page: what was cancelled, for whom, why, which serials, and how to check it."""
    font = _font()
    out = io.BytesIO()
    pdf = canvas.Canvas(out, pagesize=A4, invariant=True)  # invariant: same input, same bytes
    pdf.setTitle(f"Certificate {cert.id}")
    pdf.setAuthor("carbonbook registry")
    width, height = A4
    y = height - 30 * mm
    pdf.setFont(font, 20)
    pdf.drawCentredString(width / 2, y, "自愿注销证明")
    y -= 9 * mm
    pdf.setFont(font, 12)
    pdf.drawCentredString(width / 2, y, "Certificate of voluntary cancellation")
    y -= 16 * mm
    rows = [
        ("证明编号 Certificate", cert.id),
        ("注销方 Holder", cert.holder),
        ("受益方 Beneficiary", cert.beneficiary),
        ("用途 Reason", cert.reason),
        ("单位 Unit", cert.asset),
        ("数量 Quantity", f"{cert.quantity:,} tCO2e"),
        ("注销时间 Cancelled at", when),
    ]
    for label, value in rows:
        pdf.setFont(font, 10)
        pdf.drawString(25 * mm, y, label)
        pdf.setFont(font, 11)
        for i, chunk in enumerate(_wrap(value, 60)):
            pdf.drawString(75 * mm, y - i * 5.5 * mm, chunk)
        y -= max(1, len(_wrap(value, 60))) * 5.5 * mm + 3 * mm
    y -= 4 * mm
    pdf.setFont(font, 10)
    pdf.drawString(25 * mm, y, "序列号 Serial numbers")
    y -= 6 * mm
    for serial in cert.serials[:30]:
        pdf.drawString(30 * mm, y, serial)
        y -= 5 * mm
    if len(cert.serials) > 30:
        pdf.drawString(30 * mm, y, f"… {len(cert.serials) - 30} more blocks: see {url}")
    pdf.setFont(font, 8)
    pdf.drawString(25 * mm, 25 * mm, f"Check it: {url}")
    pdf.drawString(25 * mm, 20 * mm, f"SHA-256 {fingerprint(cert)}")
    pdf.showPage()
    pdf.save()
    return out.getvalue()


def _wrap(text: str, width: int) -> list[str]:
    return [text[i : i + width] for i in range(0, len(text), width)] or [""]
