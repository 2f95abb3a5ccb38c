import os
import subprocess
import sys
from pathlib import Path

import pytest

from knowledge.chunking import chunk_segments, split_sentences
from knowledge.tokens import count_tokens, encoding

ROOT = Path(__file__).resolve().parent.parent


def test_tiktoken_counts_offline_with_the_shipped_files():
    assert encoding("cl100k_base").encode("hello world") == [15339, 1917]
    assert count_tokens("hello world") == 2


def test_sentences_split_on_ends_and_blank_lines():
    assert split_sentences("One. Two? Three!\n\nFour") == ["One.", "Two?", "Three!", "Four"]


def test_chunks_aim_for_target_size_with_overlap_and_keep_labels(settings):
    sentences = [f"Sentence number {i} says the value is {i * 7}." for i in range(120)]
    segments = [
        {"label": "page=1", "text": " ".join(sentences[:60])},
        {"label": "page=2", "text": " ".join(sentences[60:])},
    ]
    chunks = chunk_segments(segments)
    assert {c.label for c in chunks} == {"page=1", "page=2"}
    assert all(len(c.text) <= settings.CHUNK_TARGET_CHARS + 60 for c in chunks)
    assert all(len(c.text) >= 500 for c in chunks[:-1] if c.label == chunks[0].label)
    # about 10 % overlap: the last sentence of a chunk starts the next one on the same page
    first, second = chunks[0], chunks[1]
    assert second.text.split(". ")[0] + "." in first.text
    # every sentence survives
    joined = " ".join(c.text for c in chunks)
    assert all(s in joined for s in sentences)
    # no chunk crosses a page
    assert not any("number 59 " in c.text and "number 60 " in c.text for c in chunks)


def test_hard_token_cap_holds_for_run_on_text(settings):
    settings.CHUNK_TARGET_CHARS = 100_000
    text = " ".join(f"word{i}" for i in range(3000))  # no sentence ends at all
    chunks = chunk_segments([{"label": "", "text": text}])
    assert len(chunks) > 1
    assert all(c.token_count <= settings.CHUNK_MAX_TOKENS for c in chunks)
    assert all(count_tokens(c.text) == c.token_count for c in chunks)


def _check(env_overrides):
    env = {**os.environ, **env_overrides, "DJANGO_SETTINGS_MODULE": "ragsite.settings"}
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("DJANGO_DEBUG", "maybe", "DJANGO_DEBUG: expected true/false"),
        ("SEARCH_BACKEND", "elastic", "SEARCH_BACKEND: must be one of embedded, postgres, azure"),
        ("CHUNK_MAX_TOKENS", "lots", "CHUNK_MAX_TOKENS: cannot parse"),
        ("DATABASE_URL", "mysql://x@y/z", "DATABASE_URL: only sqlite:// and postgres://"),
        ("REDIS_URL", "http://localhost", "REDIS_URL: expected redis://"),
        ("CHAT_RATE_LIMIT", "fast", "CHAT_RATE_LIMIT: expected a rate"),
        ("EMBEDDINGS", "maybe", "EMBEDDINGS: must be one of auto, service, local, none"),
        (
            "DOCUMENT_INTELLIGENCE_FOR_PDF",
            "true",
            "DOCUMENT_INTELLIGENCE_ENDPOINT: must be set when DOCUMENT_INTELLIGENCE_FOR_PDF=true",
        ),
        ("AZURE_STORAGE_ACCOUNT_URL", "https://example.com", "AZURE_STORAGE_ACCOUNT_URL: expected"),
    ],
)
def test_bad_setting_fails_at_start_up_naming_the_variable(name, value, expected):
    result = _check({name: value})
    assert result.returncode != 0
    assert expected in result.stderr


def test_postgres_search_on_a_sqlite_app_needs_its_own_database(tmp_path):
    sqlite = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    env = {"SEARCH_BACKEND": "postgres", "DATABASE_URL": sqlite, "SEARCH_DATABASE_URL": ""}
    env["DJANGO_SECRET_KEY"] = "test-only"
    result = _check(env)
    assert result.returncode != 0
    assert "SEARCH_DATABASE_URL: must be set when SEARCH_BACKEND=postgres" in result.stderr


def test_local_embeddings_beside_an_embedding_service_is_refused():
    env = {
        "EMBEDDINGS": "local",
        "OPENAI_HOST": "compatible",
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "OPENAI_CHAT_MODEL": "llama3.1",
        "OPENAI_EMBEDDING_MODEL": "nomic-embed-text",
    }
    result = _check(env)
    assert result.returncode != 0
    assert "EMBEDDINGS: is 'local' while an embedding model" in result.stderr
    assert _check({"EMBEDDINGS": "local"}).returncode == 0


def test_default_configuration_starts_clean():
    result = _check({})
    assert result.returncode == 0, result.stderr


def _embedding_settings(env_overrides):
    """EMBEDDINGS as a fresh process resolves it, from only the model settings given."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "AZURE_OPENAI_", "EMBEDDINGS"))
    }
    env.update(env_overrides, DJANGO_SETTINGS_MODULE="ragsite.settings")
    code = (
        "from django.conf import settings as s; "
        "print(s.EMBEDDINGS_SETTING, s.EMBEDDINGS, s.EMBEDDINGS_ENABLED)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_zero_configuration_embeds_with_the_local_model():
    assert _embedding_settings({}) == ["auto", "local", "True"]


_LLM = {
    "OPENAI_HOST": "compatible",
    "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
    "OPENAI_CHAT_MODEL": "llama3.1",
}


def test_a_configured_llm_gets_no_local_model_unless_asked():
    # No embedding model named: no vectors, as before the local model existed.
    assert _embedding_settings(_LLM) == ["auto", "service", "False"]
    service = {**_LLM, "OPENAI_EMBEDDING_MODEL": "nomic-embed-text"}
    assert _embedding_settings(service) == ["auto", "service", "True"]
    assert _embedding_settings({**_LLM, "EMBEDDINGS": "local"}) == ["local", "local", "True"]


def test_embeddings_none_turns_vectors_off_even_offline():
    assert _embedding_settings({"EMBEDDINGS": "none"}) == ["none", "none", "False"]
    service = {**_LLM, "OPENAI_EMBEDDING_MODEL": "nomic-embed-text", "EMBEDDINGS": "none"}
    assert _embedding_settings(service) == ["none", "none", "False"]
