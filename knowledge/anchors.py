"""Where in a file a passage is. A segment label "page=3", "slide=2" or "sheet=Q1 sales" is an
anchor: citations carry it (`deck.pptx#slide=2`) and the original opens there. Any other label
is a section's title, which a citation leaves out."""

KINDS = {"page": "Page", "slide": "Slide", "sheet": "Sheet"}


def is_anchor(label: str) -> bool:
    kind, sep, value = label.partition("=")
    return bool(sep) and kind in KINDS and bool(value.strip())


def cite(citation: str, label: str) -> str:
    """The citation of a passage with this label."""
    return f"{citation}#{label}" if is_anchor(label) else citation


def describe(label: str) -> str:
    """The label as the document page shows it: "Slide 2", or the section title itself."""
    if not is_anchor(label):
        return label
    kind, _, value = label.partition("=")
    return f"{KINDS[kind]} {value}"
