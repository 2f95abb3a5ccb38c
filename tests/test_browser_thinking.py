"""A reasoning model's thinking on the page, in a real browser: a "Thinking" panel apart from
the answer, open while the model thinks and folded once the answer streams, shown again when
the conversation is opened later."""

import pytest

from tests.browser import (
    CHROMIUM_ARGS,
    ask,
    chromium_path,
    live_server,
    require_playwright,
    sync_playwright,
    watch_answer,
)
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.reasoning import THOUGHT

pytestmark = [pytest.mark.browser, pytest.mark.own_configuration]


@pytest.fixture(scope="module")
def r1_server(tmp_path_factory):
    require_playwright()
    executable = chromium_path()
    with FakeOpenAI() as fake:
        fake.set_latency(ttft=0.0, chunks=8, chunk_interval=0.05)
        settings = {
            "OPENAI_HOST": "compatible",
            "OPENAI_BASE_URL": fake.openai_base_url,
            "OPENAI_API_KEY": fake.api_key,
            "OPENAI_CHAT_MODEL": "deepseek-r1:8b",
        }
        with live_server(tmp_path_factory.mktemp("ragsite-r1"), **settings) as running:
            running.chromium = executable
            yield running


def test_the_thinking_panel_streams_apart_from_the_answer(r1_server):
    from playwright.sync_api import expect

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=r1_server.chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(base_url=r1_server.url)
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto("/")
        ask(page, "How many unused vacation days can I carry over?")
        assert watch_answer(page)[-1]["state"] == "done"
        panel = page.locator(".msg-assistant details.thinking").last
        expect(panel.locator("summary")).to_have_text("Thinking")
        assert panel.evaluate("node => node.open") is False  # folded once the answer came
        panel.locator("summary").click()
        expect(panel.locator(".thinking-text")).to_have_text(THOUGHT)
        answer = page.locator(".msg-assistant .answer").last
        expect(answer).not_to_contain_text("let me check")
        expect(answer.locator("a.citation").first).to_be_visible()

        page.reload()  # the conversation opened again shows its stored thinking
        stored = page.locator(".msg-assistant details.thinking").last
        expect(stored.locator(".thinking-text")).to_have_text(THOUGHT)
        browser.close()
        assert not errors, errors
