"""Answerers behind one interface (base.py), chosen by OPENAI_HOST."""

from django.conf import settings

from chat.llm.base import Answerer
from core.per_loop import PerLoop


def build_answerer() -> Answerer:
    if settings.OPENAI_HOST == "local":
        from chat.llm.local import LocalAnswerer

        return LocalAnswerer()
    from chat.llm.openai_answerer import OpenAIAnswerer

    return OpenAIAnswerer()


answerers = PerLoop(lambda: build_answerer())
get_answerer = answerers.get
