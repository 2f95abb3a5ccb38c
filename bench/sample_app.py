"""The reference for CPU per chat: a bare streaming relay in the shape of the well-known sample
apps (FastAPI, the openai SDK's own stream, NDJSON out; no retrieval, no database).

The bench's CPU target is "half of what the sample apps spend on a bare relay". Measured in the
same sweep as ragsite, that half is a ratio this machine's drift cannot move (bench/README.md).
It speaks just enough of ragsite's protocol for the load generator to time it: a context event
first and last, one delta event per token.

    uvicorn bench.sample_app:app      # OPENAI_BASE_URL, OPENAI_CHAT_MODEL from the environment
"""

import json
import os

from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from openai import AsyncOpenAI
from pydantic import BaseModel

SYSTEM_PROMPT = "Answer the user's question from the sources. Cite them in square brackets."

client = AsyncOpenAI(
    base_url=os.environ["OPENAI_BASE_URL"],
    api_key=os.environ.get("OPENAI_API_KEY") or "not-needed",
)
MODEL = os.environ.get("OPENAI_CHAT_MODEL", "bench")
app = FastAPI()


class Message(BaseModel):
    role: str
    content: str


class ChatRequest(BaseModel):
    messages: list[Message]


@app.post("/chat/stream")
async def chat_stream(request: ChatRequest) -> StreamingResponse:
    messages = [{"role": "system", "content": SYSTEM_PROMPT}]
    messages += [m.model_dump() for m in request.messages]

    async def lines():
        yield json.dumps({"type": "response.context", "context": {}}) + "\n"
        stream = await client.chat.completions.create(
            model=MODEL, messages=messages, stream=True, stream_options={"include_usage": True}
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                delta = chunk.choices[0].delta.content
                yield json.dumps({"type": "response.output_text.delta", "delta": delta}) + "\n"
        yield json.dumps({"type": "response.context", "context": {}}) + "\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson")
