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
CREATE INDEX IF NOT EXISTS {TABLE}_groups ON {TABLE} USING gin (groups);
"""

ADD_VECTOR_COLUMN = (
    f"ALTER TABLE {TABLE} ADD COLUMN embedding vector({{dims}}); "
    f"CREATE INDEX {TABLE}_embedding ON {TABLE} USING hnsw (embedding vector_cosine_ops)"
)

_COLUMNS = "c.document_id, c.ordinal, c.title, c.body, c.citation, c.label, c.collection"
_QUERY = f"websearch_to_tsquery({CONFIG}, %(terms)s)"
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


def text_statement(where: str, snippets: bool = False) -> str:
    snippet = _SNIPPET if snippets else "''"
    return (
        f"SELECT {_COLUMNS}, ts_rank(c.tsv, q.query) AS score, {snippet} "
        f"FROM {TABLE} c, {_QUERY} AS q(query) "
        f"WHERE c.tsv @@ q.query{where} "
        "ORDER BY score DESC, c.document_id, c.ordinal LIMIT %(top)s"
    )


def vector_statement(where: str) -> str:
    # ORDER BY the distance alone, so the HNSW index can produce the order.
    return (
        f"SELECT {_COLUMNS}, 1 - (c.embedding <=> {_VECTOR}) AS score, '' "
        f"FROM {TABLE} c WHERE c.embedding IS NOT NULL{where} "
        f"ORDER BY c.embedding <=> {_VECTOR} LIMIT %(top)s"
    )


def hybrid_statement(where: str) -> str:
    """Both rankings, each filtered and cut to top, fused by reciprocal rank: one round trip."""
    return f"""
WITH text_hits AS (
    SELECT document_id, ordinal, row_number() OVER (ORDER BY score DESC) AS rank FROM (
        SELECT c.document_id, c.ordinal, ts_rank(c.tsv, q.query) AS score
        FROM {TABLE} c, {_QUERY} AS q(query)
        WHERE c.tsv @@ q.query{where}
        ORDER BY score DESC, c.document_id, c.ordinal LIMIT %(top)s
    ) t
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
