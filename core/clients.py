"""The one AsyncOpenAI client per process for OPENAI_HOST azure, openai or compatible (the chat
answerer and the embedder share this factory), and the Azure credential it and the Azure search
client use.

Azure OpenAI goes through plain AsyncOpenAI on its v1 endpoint (AsyncAzureOpenAI rewrites v1
paths), keyless by default: azure-identity's async credential and bearer-token provider.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import httpx2
import openai
import orjson
from django.conf import settings

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

AZURE_SCOPE = "https://cognitiveservices.azure.com/.default"


def is_out_of_quota(body: object) -> bool:
    """OpenAI's 429 for an account out of credit (`insufficient_quota`): waiting does not help."""
    error = body.get("error", body) if isinstance(body, dict) else None
    return isinstance(error, dict) and "insufficient_quota" in (
        error.get("code"),
        error.get("type"),
    )


def chat_model() -> str:
    if settings.OPENAI_HOST == "azure":
        return settings.AZURE_OPENAI_CHAT_DEPLOYMENT
    return settings.OPENAI_CHAT_MODEL


def embedding_model() -> str:
    if settings.OPENAI_HOST == "azure":
        return settings.AZURE_OPENAI_EMBEDDING_DEPLOYMENT
    return settings.OPENAI_EMBEDDING_MODEL


async def no_retry_when_out_of_quota(response: httpx2.Response) -> None:
    """The SDK retries every 429, but one for an account out of credit (`insufficient_quota`)
    does not pass by waiting: each retry only delays the error. Such a 429 is read here (a
    small JSON body) and marked with the header the SDK obeys."""
    if response.status_code != 429 or "x-should-retry" in response.headers:
        return
    await response.aread()
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return
    if is_out_of_quota(body):
        response.headers["x-should-retry"] = "false"


def http_client(timeout: openai.Timeout) -> httpx2.AsyncClient:
    """aiohttp under the SDK by default (its supported `aiohttp` extra): its C parser and
    lighter read path cost a fraction of httpx's pure-Python HTTP/1.1 per streamed token."""
    limits = httpx2.Limits(
        max_connections=settings.LLM_MAX_CONNECTIONS,
        max_keepalive_connections=settings.LLM_MAX_CONNECTIONS,
    )
    options: dict[str, Any] = {
        "timeout": timeout,
        "limits": limits,
        "event_hooks": {"response": [no_retry_when_out_of_quota]},
    }
    if settings.LLM_HTTP_CLIENT == "aiohttp":
        return openai.DefaultAioHttpClient(**options)
    return openai.DefaultAsyncHttpxClient(**options)


def azure_credential() -> AsyncTokenCredential:
    """DefaultAzureCredential, or the managed identity named by AZURE_CLIENT_ID."""
    from azure.identity.aio import DefaultAzureCredential, ManagedIdentityCredential

    if settings.AZURE_CLIENT_ID:
        return ManagedIdentityCredential(client_id=settings.AZURE_CLIENT_ID)
    return DefaultAzureCredential()


class OpenAIClient:
    """An AsyncOpenAI client and, on keyless Azure, the credential behind it (closed together)."""

    def __init__(self, max_retries: int | None = None) -> None:
        self.credential: AsyncTokenCredential | None = None
        timeout = openai.Timeout(settings.LLM_READ_TIMEOUT, connect=settings.LLM_CONNECT_TIMEOUT)
        retries = settings.LLM_MAX_RETRIES if max_retries is None else max_retries
        common: dict[str, Any] = {
            "timeout": timeout,
            "max_retries": retries,
            "http_client": http_client(timeout),
        }
        host = settings.OPENAI_HOST
        if host == "azure":
            base_url = settings.AZURE_OPENAI_ENDPOINT.rstrip("/") + "/openai/v1/"
            api_key: str | Callable[[], Awaitable[str]]
            if settings.AZURE_OPENAI_API_KEY:
                api_key = settings.AZURE_OPENAI_API_KEY
            else:
                from azure.identity.aio import get_bearer_token_provider

                self.credential = azure_credential()
                api_key = get_bearer_token_provider(self.credential, AZURE_SCOPE)
            self.client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, **common)
        elif host == "openai":
            self.client = openai.AsyncOpenAI(
                api_key=settings.OPENAI_API_KEY,
                base_url=settings.OPENAI_BASE_URL or None,
                **common,
            )
        else:  # compatible: Ollama, vLLM, llama.cpp and friends often need no key
            self.client = openai.AsyncOpenAI(
                base_url=settings.OPENAI_BASE_URL,
                api_key=settings.OPENAI_API_KEY or "not-needed",
                **common,
            )

    async def close(self) -> None:
        await self.client.close()
        if self.credential is not None:
            await self.credential.close()
