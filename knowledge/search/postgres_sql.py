"""The PostgreSQL search backend's schema and statements. Only fixed SQL is built here; every value
(the user's words, vectors, groups, collection) travels as a bound parameter."""

from knowledge.search.fusion import RRF_K

TABLE = "ragsite_search_chunks"
CONFIG = "'english'::regconfig"

# Title and headings rank above the body (weights A and B; ts_rank counts A 1.0, B 0.4).
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    document_id bigint NOT NULL,
    ordinal integer NOT NULL,
    title text NOT NULL,
    label text NOT NULL DEFAULT '',
    body text NOT NULL,
    citation text NOT NULL,
    collection text NOT NULL DEFAULT '',
    groups text[] NOT NULL,
    tsv tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector({CONFIG}, title), 'A')
        || setweight(to_tsvector({CONFIG}, label), 'A')
        || setweight(to_tsvector({CONFIG}, body), 'B')
    ) STORED,
    PRIMARY KEY (document_id, ordinal)
);
CREATE INDEX IF NOT EXISTS {TABLE}_tsv ON {TABLE} USING gin (tsv);
DROP INDEX IF EXISTS {TABLE}_groups;
ALTER TABLE {TABLE} SET (toast_tuple_target = 8160);
"""
# A passage's row (text, tsvector and a 384-dimension vector: about 4 KB) is over PostgreSQL's
# default 2 KB toast target, so the vector, the largest column, was moved out of line: a scan
# that reads every vector (the planner's choice below some tens of thousands of rows) read about
# ten pages per row. Rows now stay whole up to a page; larger vectors still go out of line.
# Rows written before keep their layout until `sync_index --rebuild` writes them again.
# No index on `groups`: nearly every reader may read most passages (the public ones), so the
# access filter keeps most rows and an index on it only tempted the planner into combining it
# with the text index, and cost every write a second GIN update.

ADD_VECTOR_COLUMN = (
    f"ALTER TABLE {TABLE} ADD COLUMN embedding vector({{dims}}); "
    f"CREATE INDEX {TABLE}_embedding ON {TABLE} USING hnsw (embedding vector_cosine_ops)"
)

_COLUMNS = "c.document_id, c.ordinal, c.title, c.body, c.citation, c.label, c.collection"
_QUERY = f"websearch_to_tsquery({CONFIG}, %(terms)s)"
_ALL_QUERY = f"websearch_to_tsquery({CONFIG}, %(all_terms)s)"
_VECTOR = "%(vector)s::vector"
_SNIPPET = (
    f"ts_headline({CONFIG}, c.body, q.query, "
    "'StartSel=**, StopSel=**, MaxFragments=1, MinWords=8, MaxWords=24, FragmentDelimiter=…')"
)


def filters(groups: bool, collection: bool) -> str:
    """The access and collection conditions (bound as %(groups)s and %(collection)s)."""
    clauses = ["c.groups && %(groups)s::text[]"] if groups else []
    if collection:
        clauses.append("c.collection = %(collection)s")
    return "".join(f" AND {clause}" for clause in clauses)


def _text_candidates(where: str, every_word: bool) -> str:
    """At most %(candidates)s passages matching the question's words, scored by ts_rank (which
    reads each passage's whole tsvector: the cost of a common word is its matches). Passages with
    every word come first (a second, smaller index scan), so the cap drops the weakest matches."""
    branch = (
        f"(SELECT c.document_id, c.ordinal, ts_rank(c.tsv, q.query) AS score "
        f"FROM {TABLE} c, {_QUERY} AS q(query){{extra}} WHERE c.tsv @@ {{match}}{where} "
        "LIMIT %(candidates)s)"
    )
    any_word = branch.format(extra="", match="q.query")
    if not every_word:
        return any_word
    every = branch.format(extra=f", {_ALL_QUERY} AS a(query)", match="a.query")
    return f"{every} UNION ALL {any_word}"


def _best_text(where: str, every_word: bool) -> str:
    return (
        "SELECT document_id, ordinal, max(score) AS score "
        f"FROM ({_text_candidates(where, every_word)}) m GROUP BY document_id, ordinal "
        "ORDER BY score DESC, document_id, ordinal LIMIT %(top)s"
    )


def text_statement(where: str, snippets: bool = False, every_word: bool = False) -> str:
    snippet = _SNIPPET if snippets else "''"
    return (
        f"SELECT {_COLUMNS}, t.score, {snippet} "
        f"FROM ({_best_text(where, every_word)}) t "
        f"JOIN {TABLE} c USING (document_id, ordinal), {_QUERY} AS q(query) "
        "ORDER BY t.score DESC, c.document_id, c.ordinal"
    )


def vector_statement(where: str) -> str:
    # ORDER BY the distance alone, so the HNSW index can produce the order.
    return (
        f"SELECT {_COLUMNS}, 1 - (c.embedding <=> {_VECTOR}) AS score, '' "
        f"FROM {TABLE} c WHERE c.embedding IS NOT NULL{where} "
        f"ORDER BY c.embedding <=> {_VECTOR} LIMIT %(top)s"
    )


def hybrid_statement(where: str, every_word: bool = False) -> str:
    """Both rankings, each filtered and cut to top, fused by reciprocal rank: one round trip."""
    return f"""
WITH text_hits AS (
    SELECT document_id, ordinal,
        row_number() OVER (ORDER BY score DESC, document_id, ordinal) AS rank
    FROM ({_best_text(where, every_word)}) t
), vector_hits AS (
    SELECT document_id, ordinal, row_number() OVER (ORDER BY distance) AS rank FROM (
        SELECT c.document_id, c.ordinal, c.embedding <=> {_VECTOR} AS distance
        FROM {TABLE} c WHERE c.embedding IS NOT NULL{where}
        ORDER BY c.embedding <=> {_VECTOR} LIMIT %(top)s
    ) v
), fused AS (
    SELECT document_id, ordinal, sum(1.0 / ({RRF_K} + rank)) AS score
    FROM (SELECT * FROM text_hits UNION ALL SELECT * FROM vector_hits) h
    GROUP BY document_id, ordinal
)
SELECT {_COLUMNS}, f.score, ''
FROM fused f JOIN {TABLE} c USING (document_id, ordinal)
ORDER BY f.score DESC, c.document_id, c.ordinal LIMIT %(top)s
"""
