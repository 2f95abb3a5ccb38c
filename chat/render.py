"""Answer Markdown to safe HTML for the page: markdown-it with raw HTML off, citations turned
into links to their source, then nh3 (ammonia) keeps only harmless tags and attributes."""

import html
import re
from typing import Any

import nh3
from markdown_it import MarkdownIt

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
_CITATION = re.compile(r"\[([^\[\]<>]+)\]")
_TAGS = {
    "p", "br", "strong", "em", "code", "pre", "ul", "ol", "li", "blockquote", "a",
    "h1", "h2", "h3", "h4", "table", "thead", "tbody", "tr", "th", "td", "hr",
}  # fmt: skip
_ATTRIBUTES = {"a": {"href", "class", "title"}}


def render_answer(answer: str, sources: list[dict[str, Any]]) -> str:
    links: dict[str, str] = {}
    for source in sources:  # the best-ranked passage of a citation is the one linked
        key = html.escape(source["citation"], quote=False)
        links.setdefault(
            key,
            f'<a class="citation" href="{html.escape(source["url"])}" '
            f'title="{html.escape(source["title"])}">[{key}]</a>',
        )
    rendered = _CITATION.sub(lambda m: links.get(m.group(1), m.group(0)), _markdown.render(answer))
    return nh3.clean(
        rendered,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https"},
        link_rel="noopener noreferrer",
    )
