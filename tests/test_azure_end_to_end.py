"""SEARCH_BACKEND=azure through the public interfaces: commands, index sync and the chat API."""

import json

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command

from tests.asgi_client import AsyncClient
from tests.chat_helpers import SECRET_FACT, ask, build_kb
from tests.test_search_contract import use_fake_azure

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def azure(settings, fake_search_factory):
    """The fake as strict as the service (writes visible to queries after a delay, Retry-After
    on throttling) and the SDK's retries on, as shipped."""
    service = use_fake_azure(
        settings, lambda **kw: fake_search_factory(**{**kw, "visibility_delay": 0.3})
    )
    settings.AZURE_SEARCH_RETRIES = 3
    service.retry_after = 0.05
    call_command("search_index", "--create", verbosity=0)
    return service


async def test_chat_over_azure_search_with_the_filter_in_the_thoughts(azure, settings):
    azure.fail_next(503, operation="index")  # throttled once: the SDK retries
    await sync_to_async(build_kb)()
    await azure.settle_async()  # the service shows new documents to queries a moment later
    stored = azure.documents(settings.AZURE_SEARCH_INDEX)
    assert {d["document_id"] for d in stored.values()} and all(d["groups"] for d in stored.values())
    body = json.dumps(ask("What does L4 pay per year for vacation replacements?"))
    response = await AsyncClient().post("/chat", data=body, content_type="application/json")
    data = response.json()
    assert response.status_code == 200
    assert SECRET_FACT.split(" per")[0] not in json.dumps(data)
    access = next(t for t in data["context"]["thoughts"] if t["title"] == "Access filter")
    assert access["props"]["backend"] == "azure"
    searched = [r.json for r in azure.requests if r.endpoint == "search"][-1]
    assert searched["filter"] == "groups/any(g: search.in(g, 'public', ','))"
    assert (
        "five unused vacation days"
        in (
            await AsyncClient().post(
                "/chat",
                data=json.dumps(ask("How many unused vacation days can I carry over?")),
                content_type="application/json",
            )
        ).json()["output_text"]
    )


def test_search_index_drop_and_sync_index_rebuild(azure, settings, search):
    build_kb()
    call_command("search_index", "--drop", verbosity=0)
    assert settings.AZURE_SEARCH_INDEX not in azure.indexes
    call_command("search_index", "--create", verbosity=0)
    call_command("sync_index", "--rebuild", verbosity=0)
    azure.settle()
    assert "[Leave policy]" in search("vacation days")
    assert "Salary bands" not in search("band L4")
