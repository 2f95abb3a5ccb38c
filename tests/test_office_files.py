"""PowerPoint, Excel, CSV and JSON: text with the anchors citations carry (slide=N, sheet=Name),
hidden content left out, formulas and macros never run, and hostile files refused with a clear
message, in the admin, in `ingest` and in chat citations."""

import io
import json
import re
import threading
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from knowledge import extract as extract_module
from knowledge.anchors import cite, describe
from knowledge.extract import ExtractionError, extract, guess_title
from knowledge.formats import records, sheets, slides, tables
from knowledge.models import Document
from tests.admin_forms import add_document
from tests.files import pptx_bytes, with_zip_member, xlsx_bytes, zip_bomb

DECK = [
    {
        "title": "Travel policy",
        "body": "Book trains for trips under four hours.",
        "notes": "Mention the rail card refund of 50 euros.",
    },
    {
        "title": "Secret draft",
        "body": "Layoffs are planned for March.",
        "hidden": True,
    },
    {
        "title": "Hotel limits",
        "body": "Hotels may cost up to 140 euros a night.",
        "table": [["City", "Limit"], ["Lisbon", "120"], ["Paris", "180"]],
        "hidden_box": "Invisible note about bonuses.",
    },
]


def _text(segments) -> str:
    return " ".join(s["text"] for s in segments)


def test_pptx_one_segment_per_visible_slide_with_title_notes_and_tables():
    data = pptx_bytes(DECK, title="Travel deck")
    segments = extract("deck.pptx", data)
    assert [s["label"] for s in segments] == ["slide=1", "slide=3"]  # slide 2 is hidden
    first, third = segments
    assert first["text"].startswith("Travel policy.\n\n")
    assert "four hours" in first["text"]
    assert "Speaker notes: Mention the rail card refund of 50 euros." in first["text"]
    assert third["text"].startswith("Hotel limits.")
    assert "Paris | 180" in third["text"] and "140 euros" in third["text"]
    # Each table row ends as a sentence of its own, so an answer can quote one row.
    assert "Lisbon | 120.\n\nParis | 180." in third["text"]
    text = _text(segments)
    assert "Layoffs" not in text and "Secret draft" not in text
    assert "Invisible note" not in text
    assert guess_title("deck.pptx", data, segments) == "Travel deck"


def test_pptx_title_falls_back_to_the_first_slide_title():
    data = pptx_bytes(DECK[:1])
    assert guess_title("deck.pptx", data, extract("deck.pptx", data)) == "Travel policy"


def test_xlsx_one_segment_per_visible_sheet_rows_named_by_header():
    data = xlsx_bytes(
        {
            "Offices": [["City", "Desks", "Opened"], ["Porto", 40, None], ["Lisbon", 25.0, None]],
            "Salaries": [["Name", "Salary"], ["Ana", 90000]],
            "Q1 <draft> #2": [["Note"], ["Parking costs 9 euros."]],
        },
        hidden_sheets=["Salaries"],
        title="Offices workbook",
    )
    segments = extract("book.xlsx", data)
    assert [s["label"] for s in segments] == ["sheet=Offices", "sheet=Q1 (draft) 2"]
    assert "City: Porto; Desks: 40." in segments[0]["text"]
    assert "City: Lisbon; Desks: 25." in segments[0]["text"]
    assert "Ana" not in _text(segments) and "90000" not in _text(segments)
    assert guess_title("book.xlsx", data, segments) == "Offices workbook"


def test_xlsx_formulas_give_cached_values_never_their_text():
    data = xlsx_bytes(
        {"Budget": [["Item", "Cost"], ["Desks", 100], ["Chairs", 50], ["Total", None]]},
        formulas=[
            ("Budget", "B4", "=SUM(B2:B3)", 150),
            ("Budget", "C2", '=HYPERLINK("http://evil.example","click")', "click"),
            ("Budget", "D2", '=cmd|" /C calc"!A0', ""),
        ],
    )
    text = _text(extract("budget.xlsx", data))
    assert "Item: Total; Cost: 150." in text
    assert "SUM" not in text and "evil.example" not in text and "cmd" not in text


def test_xlsx_hidden_rows_and_columns_are_left_out():
    data = xlsx_bytes(
        {"Staff": [["Name", "Room", "Salary"], ["Ana", "B12", 90000], ["Rui", "C3", 70000]]},
        hidden_rows=[("Staff", 3)],
        hidden_columns=[("Staff", 3)],
    )
    text = _text(extract("staff.xlsx", data))
    assert "Name: Ana; Room: B12." in text
    assert "Rui" not in text and "Salary" not in text and "90000" not in text


def test_xlsx_far_away_cell_does_not_pad_the_sheet():
    data = xlsx_bytes({"Sheet1": [["Topic", "Answer"], ["Lunch", "At noon"]]})
    # A dimension claiming the whole grid: rows come as stored, not padded to it.
    data = _replace_member(
        data,
        "xl/worksheets/sheet1.xml",
        b'<dimension ref="A1:B2"/>',
        b'<dimension ref="A1:XFD1048576"/>',
    )
    assert "Topic: Lunch; Answer: At noon." in _text(extract("far.xlsx", data))


def _replace_member(data: bytes, member: str, old: bytes, new: bytes) -> bytes:
    def change(content: bytes) -> bytes:
        assert old in content, content[:400]
        return content.replace(old, new)

    return _replace_member_with(data, member, change)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("deck.pptx", pptx_bytes([{"title": "Canteen", "body": "Lunch is served from noon."}])),
        ("book.xlsx", xlsx_bytes({"Menu": [["Meal", "Time"], ["Lunch", "noon"]]})),
    ],
)
def test_macros_inside_the_file_are_ignored(name, data):
    macro = b'Attribute VB_Name = "Module1"\nSub AutoOpen()\n Shell "calc"\nEnd Sub'
    ext = name.rsplit(".", 1)[1]
    member = "ppt/vbaProject.bin" if ext == "pptx" else "xl/vbaProject.bin"
    text = _text(extract(name, with_zip_member(data, member, macro)))
    assert "noon" in text.lower()
    assert "Shell" not in text and "AutoOpen" not in text


def test_csv_rows_with_their_header_in_a_detected_encoding():
    data = "Cidade;Secretária;Horário\nPorto;Inês;9–17\nSão Paulo;José;8–16\n".encode("cp1252")
    text = _text(extract("offices.csv", data))
    assert "Cidade: Porto; Secretária: Inês; Horário: 9–17." in text
    assert "Cidade: São Paulo; Secretária: José; Horário: 8–16." in text
    utf16 = "City,Desks\nPorto,40\n".encode("utf-16")
    assert "City: Porto; Desks: 40." in _text(extract("offices.csv", utf16))


def test_csv_formulas_stay_text():
    text = _text(extract("x.csv", b'Name,Link\nAna,"=HYPERLINK(""http://x.example"")"\n'))
    assert 'Link: =HYPERLINK("http://x.example")' in text


def test_json_records_with_field_names():
    data = json.dumps(
        {
            "updated": "2025-01-10",
            "offices": [
                {"city": "Porto", "desks": 40, "contact": {"name": "Inês"}},
                {"city": "Lisbon", "desks": 25, "tags": ["hq", "parking"]},
            ],
        }
    ).encode()
    text = _text(extract("offices.json", data))
    assert "offices - city: Porto; desks: 40; contact.name: Inês." in text
    assert "offices - city: Lisbon; desks: 25; tags[1]: hq; tags[2]: parking." in text
    assert "updated: 2025-01-10." in text
    records_list = json.dumps([{"q": "Wifi?", "a": "Guest network"}]).encode()
    assert "q: Wifi?; a: Guest network." in _text(extract("faq.json", records_list))


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("broken.pptx", b"PK\x03\x04 not really a zip", "The PPTX file is damaged"),
        ("broken.xlsx", b"PK\x03\x04 not really a zip", "The XLSX file is damaged"),
        ("locked.pptx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, "password-protected"),
        ("locked.xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, "password-protected"),
        ("word.pptx", None, "not a PowerPoint presentation (no ppt/presentation.xml"),
        ("word.xlsx", None, "not an Excel workbook (no xl/workbook.xml"),
        ("bad.json", b'{"a": [1, 2,', "not valid JSON (line 1"),
        ("deep.json", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        ("binary.csv", b"\x00\x01\xfe\xff" * 100, "binary data"),
        ("huge-cell.csv", b'a,b\n"' + b"x" * 200_000 + b'",2\n', "CSV file is malformed"),
        ("empty.json", b"[]", "No text could be extracted from this JSON file"),
    ],
)
def test_bad_office_and_data_files_have_clear_messages(name, data, message):
    if data is None:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as archive:
            archive.writestr("word/document.xml", "<w:document/>")
        data = out.getvalue()
    with pytest.raises(ExtractionError, match=re.escape(message)):
        extract(name, data)


def test_damaged_xml_inside_a_deck_is_a_clear_error():
    data = pptx_bytes([{"title": "Fine", "body": "Fine."}])
    broken = _replace_member(data, "ppt/slides/slide1.xml", b"</p:sld>", b"</p:sl")
    with pytest.raises(ExtractionError, match="The PPTX file is damaged"):
        extract("broken.pptx", broken)


_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lololololol">'
    + b"".join(
        b'<!ENTITY lol%d "%s">'
        % (n, b"".join([b"&lol%s;" % (b"" if n == 2 else b"%d" % (n - 1))] * 10))
        for n in range(2, 10)
    )
    + b"]>"
)


@pytest.mark.parametrize(
    ("name", "data", "member", "old"),
    [
        ("laughs.xlsx", xlsx_bytes({"S": [["a"], ["x"]]}), "xl/sharedStrings.xml", b"<t>x</t>"),
        ("laughs.pptx", pptx_bytes([{"title": "T", "body": "B"}]), "ppt/slides/slide1.xml", b">B<"),
    ],
)
def test_entity_expansion_bombs_are_refused(name, data, member, old):
    def explode(content: bytes) -> bytes:
        body = content.split(b"?>", 1)[1]
        return _LAUGHS + body.replace(old, old.replace(b"x", b"&lol9;").replace(b"B", b"&lol9;"))

    bomb = _replace_member_with(data, member, explode)
    with pytest.raises(ExtractionError, match="damaged"):
        extract_module.read(name, bomb)


def _replace_member_with(data: bytes, member: str, change) -> bytes:
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as original,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive,
    ):
        for info in original.infolist():
            content = original.read(info.filename)
            archive.writestr(info, change(content) if info.filename == member else content)
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "module", "required"),
    [("bomb.pptx", slides, "ppt/presentation.xml"), ("bomb.xlsx", sheets, "xl/workbook.xml")],
)
def test_zip_bombs_are_refused_before_unpacking(monkeypatch, name, module, required):
    # In this process (`read`): the sandbox's child has its own copy of the limit.
    monkeypatch.setattr(module, "MAX_UNPACKED_BYTES", 5 * 1024 * 1024)
    bomb = zip_bomb(required, unpacked_mb=20)
    assert len(bomb) < 100_000
    with pytest.raises(ExtractionError, match="would unpack to 20 MB"):
        extract_module.read(name, bomb)


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("many.csv", lambda n: b"a,b\n" + b"1,2\n" * n),
        ("many.json", lambda n: json.dumps([{"a": 1}] * n).encode()),
        ("many.xlsx", lambda n: xlsx_bytes({"S": [["a"]] + [[i] for i in range(n)]})),
    ],
)
def test_row_limits(monkeypatch, name, make):
    monkeypatch.setattr(tables, "MAX_ROWS", 50)
    with pytest.raises(ExtractionError, match="more than 50 rows"):
        extract_module.read(name, make(60))
    assert extract_module.read(name, make(40))[0]


def test_value_limit(monkeypatch):
    monkeypatch.setattr(tables, "MAX_VALUES", 100)
    wide = b",".join(b"h%d" % i for i in range(30)) + b"\n" + b",".join([b"1"] * 30) * 1
    rows = wide + (b"\n" + b",".join([b"1"] * 30)) * 5
    with pytest.raises(ExtractionError, match="more than 100 values"):
        extract_module.read("wide.csv", rows)


def test_row_limit_stops_a_sheet_that_claims_a_far_row(monkeypatch):
    monkeypatch.setattr(tables, "MAX_ROWS", 1000)
    data = xlsx_bytes({"Sheet1": [["a"], [1]]})
    data = _replace_member(data, "xl/worksheets/sheet1.xml", b'<row r="2"', b'<row r="99999999"')
    data = _replace_member(data, "xl/worksheets/sheet1.xml", b'r="A2"', b'r="A99999999"')
    with pytest.raises(ExtractionError, match="more than 1,000 rows"):
        extract_module.read("far.xlsx", data)


def test_records_decode_refuses_what_no_encoding_fits():
    with pytest.raises(ExtractionError, match="binary data|no text encoding"):
        records.decode(bytes(range(256)) * 4, "CSV")


def test_anchors_name_pages_slides_and_sheets_only():
    assert cite("deck.pptx", "slide=3") == "deck.pptx#slide=3"
    assert cite("book.xlsx", "sheet=Q1 sales") == "book.xlsx#sheet=Q1 sales"
    assert cite("a.pdf", "page=2") == "a.pdf#page=2"
    assert cite("guide.md", "Parking") == "guide.md"
    assert cite("guide.md", "x=1") == "guide.md" and cite("a.pdf", "page=") == "a.pdf"
    assert describe("slide=3") == "Slide 3" and describe("Parking") == "Parking"


@pytest.mark.django_db
def test_admin_upload_of_a_deck_cites_its_slides(
    staff_client, django_capture_on_commit_callbacks, search
):
    upload = SimpleUploadedFile("travel.pptx", pptx_bytes(DECK, title="Travel deck"))
    with django_capture_on_commit_callbacks(execute=True):
        response = add_document(staff_client, title="Travel deck", file=upload)
    assert response.status_code == 302
    doc = Document.objects.get()
    call_command("sync_index", verbosity=0)
    page = staff_client.get(f"/source/{doc.pk}/")
    assert b"Slide 3" in page.content and b"Hotels may cost up to 140 euros" in page.content
    found = search("hotel cost per night")
    assert "travel.pptx#slide=3" in found


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("locked.xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, "password-protected"),
        ("broken.pptx", b"PK\x03\x04 nope", "The PPTX file is damaged"),
        ("bad.json", b"{nope", "not valid JSON"),
    ],
)
def test_admin_upload_of_a_bad_office_file_is_a_form_error(staff_client, name, data, message):
    response = add_document(staff_client, title="Bad", file=SimpleUploadedFile(name, data))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["file"]
    assert any(message in e for e in errors), errors
    assert not Document.objects.exists()


@pytest.mark.django_db
def test_ingest_reads_every_new_format(tmp_path, capsys):
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "deck.pptx").write_bytes(pptx_bytes(DECK))
    (folder / "book.xlsx").write_bytes(xlsx_bytes({"Menu": [["Meal", "Time"], ["Lunch", "12"]]}))
    (folder / "rooms.csv").write_bytes(b"Room,Seats\nAtlas,8\n")
    (folder / "faq.json").write_bytes(b'[{"q": "Wifi?", "a": "Guest"}]')
    call_command("ingest", str(folder))
    assert "4 created, 0 updated, 0 unchanged, 0 failed, 0 skipped." in capsys.readouterr().out
    labels = {d.source_name: [s["label"] for s in d.extracted] for d in Document.objects.all()}
    assert labels == {
        "deck.pptx": ["slide=1", "slide=3"],
        "book.xlsx": ["sheet=Menu"],
        "rooms.csv": [""],
        "faq.json": [""],
    }


@pytest.mark.django_db
def test_ingest_reads_files_in_parallel_and_reports_the_same(tmp_path, monkeypatch, capsys):
    from knowledge.management.commands import ingest

    folder = tmp_path / "kb"
    folder.mkdir()
    for n in range(5):  # with the broken file, an even number: reads pair up to the end
        (folder / f"note-{n}.md").write_text(f"# Note {n}\n\nRoom {n} has {n + 4} chairs.\n")
    (folder / "broken.json").write_bytes(b"{nope")
    real = ingest.extract_with_title
    # Every read waits until another is in flight too: only parallel reads get past it.
    together = threading.Barrier(2, timeout=60)

    def paired(name, data):
        together.wait()
        return real(name, data)

    monkeypatch.setattr(ingest, "extract_with_title", paired)
    with pytest.raises(CommandError, match="1 file"):
        call_command("ingest", str(folder), "--workers", "2")
    captured = capsys.readouterr()
    assert "5 created, 0 updated, 0 unchanged, 1 failed, 0 skipped." in captured.out
    assert "broken.json: The JSON file is not valid JSON" in captured.err
    assert sorted(Document.objects.values_list("title", flat=True)) == [
        f"Note {n}" for n in range(5)
    ]
    monkeypatch.setattr(ingest, "extract_with_title", real)
    with pytest.raises(CommandError, match="1 file"):
        call_command("ingest", str(folder), "--workers", "1")
    assert "0 created, 0 updated, 5 unchanged, 1 failed" in capsys.readouterr().out
