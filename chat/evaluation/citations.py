"""Citations as answers and ground truths write them: `[handbook.pdf#page=3]`, `[Leave policy]`.

Two readings. The Azure samples' evaluate script matches file-like citations with one regular
expression, and `citations_matched` / `any_citation` use exactly that (AZURE_CITATION, with
`re.findall`, so a citation is compared as (name without extension, last `#page=N`)). Retrieval is
scored on every bracketed name instead, normalised to (document, page) so that `#page=N` is
compared as a number and a document name without regard to case or spacing. A deck's
`#slide=N` counts as its page N; another anchor (a workbook's `#sheet=Name`) names a part of the
document that has no page number, so it is compared at document level.
"""

import re
from dataclasses import dataclass

# azure-search-openai-demo, evals/evaluate.py (CitationsMatchedMetric, AnyCitationMetric).
AZURE_CITATION = re.compile(r"\[([^\]]+)\.\w{3,4}(#page=\d+)*\]")
# Any bracketed name, but not a Markdown link's text ("[text](url)").
BRACKETED = re.compile(r"\[([^\[\]]+)\](?!\()")
_PAGE = re.compile(r"^(.*?)\s*#\s*(?:page|slide)\s*=\s*(\d+)$", re.IGNORECASE)
_ANCHOR = re.compile(r"^(.*?)\s*#\s*\w+\s*=.*$")


@dataclass(frozen=True)
class Ref:
    """A citation reduced to what retrieval is scored on."""

    document: str
    page: int | None = None


def ref(citation: str) -> Ref:
    text = " ".join(citation.split())
    match = _PAGE.match(text)
    if match:
        return Ref(match[1].casefold(), int(match[2]))
    match = _ANCHOR.match(text)
    return Ref((match[1] if match else text).casefold())


def bracketed(text: str) -> list[str]:
    """The distinct bracketed names in text, in order of first appearance."""
    names = (" ".join(name.split()) for name in BRACKETED.findall(text or ""))
    return list(dict.fromkeys(name for name in names if name))


def azure_citations(text: str) -> set[tuple[str, str]]:
    return set(AZURE_CITATION.findall(text or ""))
