"""Builders for test files: real PDFs and DOCX made on the fly, and broken ones."""

import io
import zipfile


def pdf_bytes(pages: list[str], title: str = "Test PDF") -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title(title)
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


def encrypted_pdf_bytes() -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes(["Secret text"]))))
    writer.encrypt(user_password="s3cret", owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def docx_bytes(title: str, paragraphs: list[str]) -> bytes:
    import docx

    document = docx.Document()
    document.core_properties.title = title
    document.add_heading(title, level=1)
    for text in paragraphs:
        document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def zip_bomb_docx(unpacked_mb: int) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w") as member:
            block = b"\0" * (1024 * 1024)
            for _ in range(unpacked_mb):
                member.write(block)
    return out.getvalue()


def grid_span_docx(span: int, text: str = "Quarterly totals") -> bytes:
    """A one-cell table whose cell claims to span `span` grid columns (a few hundred bytes)."""
    import docx

    document = docx.Document()
    document.add_paragraph("Budget table follows.")
    cell = document.add_table(rows=1, cols=1).cell(0, 0)
    cell.text = text
    from docx.oxml import parse_xml
    from docx.oxml.ns import nsdecls

    cell._tc.get_or_add_tcPr().append(parse_xml(f'<w:gridSpan {nsdecls("w")} w:val="{span}"/>'))
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def empty_paragraphs_docx(count: int, text: str = "The only real paragraph.") -> bytes:
    """A DOCX whose body holds `count` empty paragraphs after one real one; they pack to almost
    nothing, so the file is tiny and its XML is large."""
    source = docx_bytes("Empty paragraphs", [text])
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(source)) as original,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive,
    ):
        for info in original.infolist():
            data = original.read(info.filename)
            if info.filename == "word/document.xml":
                head, _, tail = data.partition(b"<w:sectPr")
                empty = b"<w:p/>"
                with archive.open("word/document.xml", "w") as member:
                    member.write(head)
                    for _ in range(count // 10_000):
                        member.write(empty * 10_000)
                    member.write(empty * (count % 10_000))
                    member.write(b"<w:sectPr" + tail)
            else:
                archive.writestr(info, data)
    return out.getvalue()


def many_tags_html(count: int) -> bytes:
    return b"<html><body><p>Opening hours are 9 to 5.</p>" + b"<b>x</b>" * count + b"</body></html>"


def nested_list_markdown(count: int) -> bytes:
    """Markdown whose HTML is mostly tags: one short list item per line."""
    return b"# Lists\n\nThe canteen opens at noon.\n\n" + b"- a\n" * count


def pptx_bytes(slides: list[dict], title: str = "") -> bytes:
    """A deck: each slide {"title", "body", "notes", "table": [[...]], "hidden": bool,
    "hidden_box": str}."""
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    deck.core_properties.title = title
    for spec in slides:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = spec.get("title", "")
        slide.placeholders[1].text = spec.get("body", "")
        if spec.get("notes"):
            slide.notes_slide.notes_text_frame.text = spec["notes"]
        if spec.get("table"):
            rows = spec["table"]
            shape = slide.shapes.add_table(
                len(rows), len(rows[0]), Inches(1), Inches(4), Inches(6), Inches(1)
            )
            for r, row in enumerate(rows):
                for c, text in enumerate(row):
                    shape.table.cell(r, c).text = text
        if spec.get("hidden_box"):
            box = slide.shapes.add_textbox(Inches(1), Inches(6), Inches(4), Inches(1))
            box.text_frame.text = spec["hidden_box"]
            box.element.xpath("./p:nvSpPr/p:cNvPr")[0].set("hidden", "1")
        if spec.get("hidden"):
            slide.element.set("show", "0")
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def xlsx_bytes(sheets: dict[str, list[list]], *, formulas=(), hidden_sheets=(), hidden_rows=(),
               hidden_columns=(), title: str = "") -> bytes:  # fmt: skip
    """A workbook written by XlsxWriter, which, unlike openpyxl, stores a formula's cached value:
    `formulas` are (sheet, "B4", "=SUM(B2:B3)", cached value); `hidden_rows` and
    `hidden_columns` are (sheet, 1-based number)."""
    import xlsxwriter

    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    book.set_properties({"title": title})
    for name, rows in sheets.items():
        sheet = book.add_worksheet(name)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if value is not None:
                    sheet.write(r, c, value)
        for where, cell, formula, cached in formulas:
            if where == name:
                sheet.write_formula(cell, formula, None, cached)
        for where, number in hidden_rows:
            if where == name:
                sheet.set_row(number - 1, None, None, {"hidden": True})
        for where, number in hidden_columns:
            if where == name:
                sheet.set_column(number - 1, number - 1, None, None, {"hidden": True})
        if name in hidden_sheets:
            sheet.hide()
    book.close()
    return out.getvalue()


def with_zip_member(data: bytes, name: str, content: bytes) -> bytes:
    """A copy of a zip-based file with one more member (a macro project, for example)."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as original,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive,
    ):
        for info in original.infolist():
            archive.writestr(info, original.read(info.filename))
        archive.writestr(name, content)
    return out.getvalue()


def zip_bomb(required: str, unpacked_mb: int) -> bytes:
    """A small zip holding `required` and one member that inflates to `unpacked_mb` MB."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr(required, "<x/>")
        with archive.open("bomb.xml", "w") as member:
            block = b"\0" * (1024 * 1024)
            for _ in range(unpacked_mb):
                member.write(block)
    return out.getvalue()
