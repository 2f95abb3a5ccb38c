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
