"""A paid invoice as a PDF receipt (R-INV-2), laid out from plain, already-worded data.

Every word on the receipt comes in with the data (the page's template words it, so it is
translated with the pages); this module only places text on a page, so it can be tested and
reused without a request or a database. It uses fpdf2: pure Python, and it embeds a subset of
any TrueType / OpenType font it is given, which Japanese and Korean receipts need. Without a
font it uses the PDF's built-in Helvetica, which covers Western European text and the
``$ € £ ¥`` signs only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import Align, TableBordersLayout, XPos, YPos
from fpdf.fonts import FontFace

#: The built-in font's encoding (the PDF's WinAnsiEncoding): Latin text, ``€``, dashes, quotes.
CORE_ENCODING = "windows-1252"
_FAMILY = "subs-receipt"

#: Where Debian's font packages put a font with Japanese and Korean glyphs, smallest first
#: (``fonts-wqy-microhei``: 1.6 MB; ``fonts-noto-cjk``: 56 MB), then DejaVu Sans
#: (``fonts-dejavu-core``) for the signs a CJK font may lack (``₩``). ``SUBSCRIPTIONS_PDF_FONT``
#: names another file.
DEBIAN_FONTS = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
)
SYMBOL_FONTS = (Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),)


def find_fonts(configured: str | None) -> tuple[Path, ...]:
    """The Unicode fonts receipts use, the first one's glyphs first: the configured file
    (which must exist), else the first Debian CJK font found; then the symbol font. Empty
    when there is none: a receipt in Latin letters still prints with the built-in font."""
    symbols = tuple(path for path in SYMBOL_FONTS if path.is_file())
    if configured:
        return (Path(configured), *symbols)
    found = next((path for path in DEBIAN_FONTS if path.is_file()), None)
    return (found, *symbols) if found is not None else ()


@dataclass(frozen=True)
class ReceiptRow:
    """A label and its value: ``Invoice  INV-000042``, ``Charged to card  $19.35``."""

    label: str
    value: str


@dataclass(frozen=True)
class ReceiptLine:
    """One invoice line as printed: what, for which days, how much."""

    item: str
    period: str
    amount: str


@dataclass(frozen=True)
class Receipt:
    """What one receipt says, every value already formatted for the person (R-MON-4)."""

    title: str
    number: str
    seller: tuple[str, ...]
    details: tuple[ReceiptRow, ...]
    headings: tuple[str, str, str]
    lines: tuple[ReceiptLine, ...]
    totals: tuple[ReceiptRow, ...]
    notes: tuple[str, ...] = ()
    language: str = "en"


class ReceiptFontMissing(ValueError):
    """The receipt has text the built-in font cannot draw (Korean won, CJK names): it needs a
    Unicode font file, rather than a receipt with missing characters."""

    def __init__(self, characters: str) -> None:
        super().__init__(f"a Unicode font is needed to print {characters!r} on a receipt")
        self.characters = characters


def build_receipt(
    receipt: Receipt,
    *,
    font: Path | None = None,
    created_at: datetime | None = None,
    fallback_fonts: Sequence[Path] = (),
) -> bytes:
    """The receipt as PDF bytes. ``font`` is a TrueType / OpenType file (or collection) to
    embed (a subset); ``fallback_fonts`` draw what it lacks; ``created_at`` fixes the
    document's date, so the same receipt gives the same file."""
    if font is None:
        _check_core_text(receipt)
    pdf = FPDF(format="A4", unit="mm")
    pdf.core_fonts_encoding = CORE_ENCODING
    pdf.set_title(receipt.title + " " + receipt.number)
    pdf.set_lang(receipt.language)
    if created_at is not None:
        pdf.set_creation_date(created_at)
    pdf.set_auto_page_break(auto=True, margin=18)
    family = _font_family(pdf, font)
    if font is not None and fallback_fonts:
        names = [_add_font(pdf, f"{_FAMILY}-{i}", path) for i, path in enumerate(fallback_fonts)]
        pdf.set_fallback_fonts(names, exact_match=False)
    pdf.add_page()
    _heading(pdf, family, receipt)
    _rows(pdf, family, receipt.details)
    pdf.ln(4)
    _lines(pdf, family, receipt)
    pdf.ln(2)
    _rows(pdf, family, receipt.totals, align_values=Align.R)
    for note in receipt.notes:
        pdf.ln(2)
        pdf.set_font(family, size=9)
        pdf.multi_cell(0, 5, note, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())


def _font_family(pdf: FPDF, font: Path | None) -> str:
    if font is None:
        return "helvetica"
    return _add_font(pdf, _FAMILY, font)


def _add_font(pdf: FPDF, family: str, path: Path) -> str:
    """One face as regular and bold (a CJK font rarely ships a bold file); the first face
    of a collection (``.ttc``)."""
    for style in ("", "B"):
        pdf.add_font(family, style, str(path), collection_font_number=0)
    return family


def _heading(pdf: FPDF, family: str, receipt: Receipt) -> None:
    pdf.set_font(family, "B", 18)
    pdf.cell(0, 10, f"{receipt.title}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if receipt.seller:
        pdf.set_font(family, "B", 11)
        pdf.cell(0, 6, receipt.seller[0], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font(family, size=10)
        for text in receipt.seller[1:]:
            pdf.multi_cell(0, 5, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(4)


def _rows(
    pdf: FPDF, family: str, rows: tuple[ReceiptRow, ...], align_values: Align = Align.L
) -> None:
    """Label on the left, value beside it; the totals put their values under the amounts."""
    pdf.set_font(family, size=10)
    width = pdf.epw
    for row in rows:
        pdf.set_font(family, "B", 10)
        label_width = width * (0.7 if align_values is Align.R else 0.35)
        pdf.cell(label_width, 6, row.label)
        pdf.set_font(family, size=10)
        pdf.multi_cell(
            width - label_width,
            6,
            row.value,
            align=align_values,
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )


def _lines(pdf: FPDF, family: str, receipt: Receipt) -> None:
    pdf.set_font(family, size=10)
    with pdf.table(
        col_widths=(45, 35, 20),
        text_align=("LEFT", "LEFT", "RIGHT"),
        borders_layout=TableBordersLayout.HORIZONTAL_LINES,
        line_height=6,
        headings_style=FontFace(emphasis="BOLD"),
    ) as table:
        table.row(receipt.headings)
        for line in receipt.lines:
            table.row((line.item, line.period, line.amount))


def _check_core_text(receipt: Receipt) -> None:
    texts = [
        receipt.title,
        receipt.number,
        *receipt.seller,
        *(t for row in (*receipt.details, *receipt.totals) for t in (row.label, row.value)),
        *receipt.headings,
        *(t for line in receipt.lines for t in (line.item, line.period, line.amount)),
        *receipt.notes,
    ]
    missing = ""
    for text in texts:
        for char in text:
            if char not in missing and not _encodable(char):
                missing += char
    if missing:
        raise ReceiptFontMissing(missing)


def _encodable(char: str) -> bool:
    try:
        char.encode(CORE_ENCODING)
    except UnicodeEncodeError:
        return False
    return True
