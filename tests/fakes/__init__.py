"""Fake upstream servers for tests and benchmarks: OpenAI / Azure OpenAI and Azure AI Search.

See README.md in this folder. The pytest fixtures below start a fake on 127.0.0.1 on a free port
and stop it after the test; import them into a conftest.py to use them::

    from tests.fakes import (  # noqa: F401
        fake_openai, fake_openai_factory, fake_search, fake_search_factory,
    )

Exports are imported lazily, so that ``python -m tests.fakes.openai_server`` does not import the
module twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .azure_search_server import FakeAzureSearch
    from .openai_server import FakeOpenAI

_EXPORTS = {
    "FakeOpenAI": "openai_server",
    "Framing": "openai_server",
    "LF": "openai_server",
    "CRLF": "openai_server",
    "CR": "openai_server",
    "EVERY_FORM": "openai_server",
    "DEFAULT_API_KEY": "openai_server",
    "DEFAULT_ENTRA_TOKEN": "openai_server",
    "insufficient_quota": "openai_server",
    "Behaviour": "openai_server",
    "BackgroundServer": "server",
    "RecordedRequest": "server",
    "record_request": "server",
    "reply": "openai_server",
    "rate_limit": "openai_server",
    "server_error": "openai_server",
    "content_filter_error": "openai_server",
    "content_filter_mid_stream": "openai_server",
    "drop_connection": "openai_server",
    "hang": "openai_server",
    "error": "openai_server",
    "embed": "openai_server",
    "default_answer": "openai_server",
    "FakeAzureSearch": "azure_search_server",
    "parse_filter": "azure_search_server",
    "ODataError": "azure_search_server",
}

__all__ = [
    *_EXPORTS,
    "fake_openai",
    "fake_openai_factory",
    "fake_search",
    "fake_search_factory",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


try:
    import pytest
except ImportError:  # the command-line fakes do not need pytest
    pytest = None  # type: ignore[assignment]


def _django_configured() -> bool:
    try:
        from django.conf import settings
    except ImportError:
        return False
    return settings.configured


def _servers(server_class) -> Iterator[Callable[..., Any]]:
    """``make(**kwargs) -> started server``; every server made is stopped afterwards."""
    servers: list[Any] = []

    def make(**kwargs: Any) -> Any:
        server = server_class(**kwargs)
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


if pytest is not None:

    @pytest.fixture
    def fake_openai_factory(request) -> Iterator[Callable[..., FakeOpenAI]]:
        """``make(**FakeOpenAI kwargs) -> started FakeOpenAI``; all are stopped after the test.

        The fake requires credentials, as the services do; under pytest-django the app's
        settings are given the key it expects (OPENAI_API_KEY, AZURE_OPENAI_API_KEY)."""
        from .openai_server import DEFAULT_API_KEY, FakeOpenAI

        if "settings" in request.fixturenames or _django_configured():
            settings = request.getfixturevalue("settings")
            settings.OPENAI_API_KEY = settings.AZURE_OPENAI_API_KEY = DEFAULT_API_KEY
        yield from _servers(FakeOpenAI)

    @pytest.fixture
    def fake_openai(fake_openai_factory: Callable[..., FakeOpenAI]) -> FakeOpenAI:
        """A started FakeOpenAI with defaults: echo answer, no latency, credentials required
        (``DEFAULT_API_KEY``, or ``DEFAULT_ENTRA_TOKEN`` on the Azure paths)."""
        return fake_openai_factory()

    @pytest.fixture
    def fake_search_factory() -> Iterator[Callable[..., FakeAzureSearch]]:
        """``make(**FakeAzureSearch kwargs) -> started FakeAzureSearch``; stopped after the test."""
        from .azure_search_server import FakeAzureSearch

        yield from _servers(FakeAzureSearch)

    @pytest.fixture
    def fake_search(fake_search_factory: Callable[..., FakeAzureSearch]) -> FakeAzureSearch:
        """A started FakeAzureSearch; admin key ``fake-search-admin-key``, no indexes."""
        return fake_search_factory()
