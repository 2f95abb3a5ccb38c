"""The sample knowledge base's PDF and DOCX files are made from Markdown sources, its PPTX and XLSX
files from TOML ones (sample_kb/_source/), by sample_kb/_build.py; the committed files must be
what it makes of them, and every question's answer must be in its source, on its page, slide or
sheet."""

import importlib.util
from pathlib import Path

import pytest

SAMPLE_KB = Path(__file__).resolve().parent.parent / "sample_kb"


@pytest.fixture(scope="module")
def build():
    spec = importlib.util.spec_from_file_location("sample_kb_build", SAMPLE_KB / "_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_generated_file_is_what_its_source_makes(build):
    specs = build.specs()
    generated = {p.relative_to(SAMPLE_KB).as_posix() for p in SAMPLE_KB.glob("*/*.*")}
    binary = (".pdf", ".docx", ".pptx", ".xlsx")
    assert {s["path"] for s in specs} == {p for p in generated if p.endswith(binary)}
    for spec in specs:
        assert build.build(spec) == (SAMPLE_KB / spec["path"]).read_bytes(), spec["path"]


def test_every_answer_is_in_its_source_on_its_page_slide_or_sheet(build, capsys):
    assert build.check_questions() == 0, capsys.readouterr().out


def test_a_source_reads_as_title_pages_and_blocks(build, tmp_path):
    source = tmp_path / "doc.md"
    source.write_text(
        "# Title\n\nFirst paragraph\nwrapped.\n\n## 1. Heading\n\n- one\n- two,\n  wrapped\n\n"
        "---\n\n1. first\n2. second\n"
    )
    assert build.read_source(source) == (
        "Title",
        [
            [
                ("p", "First paragraph wrapped."),
                ("h2", "1. Heading"),
                ("ul", ["one", "two, wrapped"]),
            ],
            [("ol", ["first", "second"])],
        ],
    )


@pytest.mark.parametrize(
    "markdown", ["> quoted\n", "### deeper\n", "- a\n  - nested\n", "    code\n"]
)
def test_markdown_the_builder_cannot_render_is_refused(build, tmp_path, markdown):
    source = tmp_path / "doc.md"
    source.write_text("# Title\n\n" + markdown)
    with pytest.raises(SystemExit, match="not supported in a source"):
        build.read_source(source)
