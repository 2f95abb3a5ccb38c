"""The sync baseline: ragsite's chat as a Flask-era app would serve it.

The same Django project, middleware, database and search index, but WSGI under
``gunicorn -w 4 --worker-class sync``: every service is called synchronously, so a worker is
busy for the whole answer. Per chat: validate, store the question (sync ORM), retrieve from the
same SQLite FTS5 index with the same SQL, stream the answer from the upstream with the sync
``openai.OpenAI`` client as NDJSON, store the answer. No rewrite step (the bench asks first
questions only, where ragsite skips it too).

    DJANGO_SETTINGS_MODULE=bench.sync_settings gunicorn -w 4 --worker-class sync bench.sync_app
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.sync_settings")

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()

import openai  # noqa: E402
from django.conf import settings  # noqa: E402
from django.http import JsonResponse, StreamingHttpResponse  # noqa: E402
from django.urls import include, path  # noqa: E402
from django.utils import timezone  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402

from chat import store  # noqa: E402
from chat.llm.openai_answerer import SYSTEM_PROMPT, sources_block  # noqa: E402
from chat.models import Conversation, Message  # noqa: E402
from chat.pipeline import data_points  # noqa: E402
from chat.protocol import ProtocolError, encode, parse_body, parse_request  # noqa: E402
from knowledge.access import access_for_sync  # noqa: E402
from knowledge.search.base import SearchQuery  # noqa: E402
from knowledge.search.embedded import EmbeddedSearchBackend  # noqa: E402

_client = None
_index = EmbeddedSearchBackend(settings.SEARCH_INDEX_PATH)


def client() -> openai.OpenAI:
    global _client  # one per worker process, built after gunicorn forks
    if _client is None:
        _client = openai.OpenAI(
            base_url=settings.OPENAI_BASE_URL,
            api_key=settings.OPENAI_API_KEY or "not-needed",
            timeout=openai.Timeout(settings.LLM_READ_TIMEOUT, connect=settings.LLM_CONNECT_TIMEOUT),
            max_retries=settings.LLM_MAX_RETRIES,
        )
    return _client


@csrf_exempt
def chat_stream(request):
    if request.method != "POST":
        return JsonResponse({"error": "Use POST with a JSON body."}, status=405)
    try:
        chat = parse_request(parse_body(request.body))
    except ProtocolError as exc:
        return JsonResponse({"error": exc.message}, status=exc.status)
    access = access_for_sync(request.user)
    question = store.Question(chat, request.user, request.session.session_key)
    (opened,) = store.store_turns([question])
    if isinstance(opened, ProtocolError):
        return JsonResponse({"error": opened.message}, status=opened.status)
    conversation_id, history = opened
    query = SearchQuery(
        text=chat.question, access=access, top=chat.overrides.top or settings.CHAT_DEFAULT_TOP
    )
    hits = _index.search_sync(query)
    system = SYSTEM_PROMPT + "\n\nSources:\n" + sources_block(hits)
    upstream = client().chat.completions.create(
        model=settings.OPENAI_CHAT_MODEL,
        messages=[
            {"role": "system", "content": system},
            *history,
            {"role": "user", "content": chat.question},
        ],
        stream=True,
        stream_options={"include_usage": True},
    )
    context = {"data_points": data_points(hits, staff=False), "thoughts": []}
    state = str(conversation_id)

    def lines():
        yield encode({"type": "response.context", "context": context, "session_state": state})
        parts, usage = [], {}
        try:
            for chunk in upstream:
                if chunk.usage:
                    usage = chunk.usage.model_dump()
                if chunk.choices and chunk.choices[0].delta.content:
                    parts.append(chunk.choices[0].delta.content)
                    yield encode({"type": "response.output_text.delta", "delta": parts[-1]})
        finally:
            upstream.close()
            message = Message.objects.create(
                conversation_id=conversation_id,
                role=Message.Role.ASSISTANT,
                content="".join(parts),
                context=context,
                usage=usage,
            )
            Conversation.objects.filter(pk=conversation_id).update(updated_at=timezone.now())
        final = {**context, "usage": usage, "message_id": message.pk}
        yield encode({"type": "response.context", "context": final, "session_state": state})

    response = StreamingHttpResponse(lines(), content_type="application/x-ndjson")
    response["Cache-Control"] = "no-cache"
    return response


# The sync view first; the rest of ragsite (source pages for citation links, admin) after it.
urlpatterns = [path("chat/stream", chat_stream), path("", include("ragsite.urls"))]
