"""The chat page in a real browser against a real server (see tests/browser.py).

Set RAGSITE_SCREENSHOT=1 to refresh docs/screenshot.png from the first test.
"""

import json
import os
import re
import time
import urllib.request

import pytest

from tests.browser import (
    CHROMIUM_ARGS,
    DEMO_PASSWORD,
    REPO,
    answer_state,
    ask,
    chromium_path,
    live_server,
    require_playwright,
    sync_playwright,
    watch_answer,
)

pytestmark = [pytest.mark.browser, pytest.mark.own_configuration]

VACATION_QUESTION = "How many unused vacation days can I carry over into the next year?"
VACATION_PASSAGE = "You may carry over up to five unused vacation days into the following year"
ENGINEERING_QUESTION = "Which extension reaches the SEV1 war room conference bridge?"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # Skip before the (slow) server start when there is no browser to drive.
    require_playwright()
    executable = chromium_path()
    with live_server(tmp_path_factory.mktemp("ragsite-browser")) as running:
        running.chromium = executable
        yield running


@pytest.fixture(scope="module")
def browser(server):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=server.chromium, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 860}, base_url=server.url)
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def expect():
    from playwright.sync_api import expect

    return expect


def test_anonymous_answer_streams_cites_and_links_to_the_passage(page, server):
    page.goto("/")
    expect()(page.get_by_role("link", name="Log in", exact=True)).to_be_visible()
    ask(page, VACATION_QUESTION)

    observations = watch_answer(page)
    streamed = [o["text"] for o in observations if o["state"] == "streaming"]
    lengths = [len(t) for t in streamed]
    assert len(streamed) >= 2 and lengths == sorted(lengths) and lengths[-1] > lengths[0], (
        f"the answer did not visibly stream: {observations}"
    )
    assert observations[-1]["state"] == "done"
    answer = page.locator(".msg-assistant .answer").last
    expect()(answer).to_contain_text("five unused vacation days")
    citation = answer.locator("a.citation").first
    expect()(citation).to_have_attribute("href", re.compile(r"^/source/\d+/\?chunk=\d+$"))
    expect()(page.locator(".sources .source-link").first).to_contain_text("Leave")
    expect()(page.get_by_role("button", name="Helpful", exact=True)).to_be_visible()
    assert page.locator(".followups .chip").count() >= 1

    thoughts = page.locator("details.thoughts")
    expect()(thoughts.locator("summary")).to_have_text("Thought process")
    thoughts.locator("summary").click()
    expect()(thoughts).to_contain_text("Search query")
    expect()(thoughts).to_contain_text(VACATION_QUESTION)
    expect()(thoughts).to_contain_text("Search results")
    thoughts.locator("summary").click()
    expect()(thoughts.locator(".thought-steps")).to_be_hidden()

    if os.environ.get("RAGSITE_SCREENSHOT") == "1":
        page.evaluate("window.scrollTo(0, 0)")
        page.mouse.move(0, 0)
        page.screenshot(path=str(REPO / "docs" / "screenshot.png"))

    href = citation.get_attribute("href")
    chunk = href.rsplit("=", 1)[1]
    citation.click()
    page.wait_for_url(f"**{href}")
    highlighted = page.locator(".chunk.highlight")
    expect()(highlighted).to_have_count(1)
    expect()(highlighted).to_have_attribute("id", f"chunk-{chunk}")
    expect()(highlighted).to_contain_text(VACATION_PASSAGE)
    expect()(highlighted).to_be_in_viewport()
    expect()(page.locator("h1")).to_have_text("Leave and Vacation Policy")


def complete_answer(url: str, question: str) -> str:
    """The whole answer, non-streamed, as an anonymous program would ask for it."""
    body = json.dumps({"messages": [{"role": "user", "content": question}]}).encode()
    request = urllib.request.Request(
        url + "/chat", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=20) as response:
        return json.load(response)["output_text"]


def test_stop_keeps_the_partial_answer(page, server):
    page.goto("/")
    ask(page, VACATION_QUESTION)
    stop = page.get_by_role("button", name="Stop")
    expect()(stop).to_be_visible()
    deadline = time.monotonic() + 10
    while (state := answer_state(page)) is None or state["state"] == "waiting":
        assert time.monotonic() < deadline, "no token arrived"
        time.sleep(0.005)
    stop.click()

    answer = page.locator(".msg-assistant .answer").last
    expect()(answer).to_have_attribute("data-state", "stopped")
    expect()(answer).to_contain_text("(stopped)")
    partial = answer.text_content()
    # Answering the same question from scratch takes as long as the stopped answer would have
    # needed to finish: whatever it still had to send would have arrived by now.
    full = complete_answer(server.url, VACATION_QUESTION)
    assert answer.text_content() == partial, "text kept arriving after Stop"
    shown = partial.removesuffix(" (stopped)")
    assert shown and full.startswith(shown), (shown, full)
    assert len(shown) < len(full), "the answer was complete before Stop: nothing was tested"
    assert answer.locator("a.citation").count() == 0
    expect()(page.get_by_role("button", name="Send")).to_be_visible()
    expect()(stop).to_be_hidden()

    # The conversation goes on after a stop.
    ask(page, "From which day of sick leave do I need a medical certificate?")
    assert watch_answer(page)[-1]["state"] == "done"
    expect()(page.locator(".msg-assistant .answer").last).to_contain_text("fourth calendar day")
    assert page.locator(".msg-user").count() == 2


def test_logged_in_user_gets_team_answer_sidebar_and_feedback(page):
    page.goto("/")
    page.get_by_role("link", name="Log in", exact=True).click()
    page.get_by_label("Username").fill("erin")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/$"))
    expect()(page.locator(".topnav")).to_contain_text("erin")
    expect()(page.get_by_role("button", name="Log out")).to_be_visible()
    expect()(page.locator(".sidebar")).to_be_visible()

    ask(page, ENGINEERING_QUESTION)
    assert watch_answer(page)[-1]["state"] == "done"
    answer = page.locator(".msg-assistant .answer").last
    expect()(answer).to_contain_text("7777")
    expect()(answer.locator("a.citation").first).to_contain_text("incident-severity-levels.pdf")
    page.wait_for_url(re.compile(r"\?c=[0-9a-f-]{36}$"))

    page.get_by_role("button", name="Helpful", exact=True).click()
    expect()(page.locator(".feedback")).to_contain_text("Thanks")

    page.reload()
    sidebar_link = page.locator(".conversation-list a", has_text="SEV1 war room")
    expect()(sidebar_link).to_have_count(1)
    expect()(sidebar_link).to_have_attribute("aria-current", "page")
    # The reloaded page shows the conversation again, citations still linked.
    restored = page.locator(".msg-assistant .answer").last
    expect()(restored).to_contain_text("7777")
    expect()(restored.locator("a.citation").first).to_be_visible()

    page.get_by_role("button", name="New chat").click()
    expect()(page.locator(".msg")).to_have_count(0)
    assert page.url.endswith("/")


def test_hostile_questions_and_documents_stay_text(page):
    page.goto("/")
    ask(page, "What is the zebra crossing rule? <img src=x onerror=window.__pwned=6>")
    assert watch_answer(page)[-1]["state"] == "done"
    messages = page.locator("#messages")
    expect()(page.locator(".msg-user").last).to_contain_text("<img src=x onerror")
    answer = page.locator(".msg-assistant .answer").last
    expect()(answer).to_contain_text("zebra stripes <img src=x onerror=window.__pwned=2>")
    expect()(answer).to_contain_text("<script>window.__pwned=3</script>")
    expect()(page.locator(".sources")).to_contain_text('Zebra memo <img src=x onerror="')
    page.locator("details.thoughts summary").click()
    expect()(page.locator("details.thoughts")).to_contain_text("Zebra memo <img")
    assert messages.locator("img, script, iframe, [onerror]").count() == 0
    assert messages.locator('a[href^="javascript:"]').count() == 0
    page.wait_for_load_state("networkidle")  # a broken image would have failed to load by now
    assert page.evaluate("typeof window.__pwned") == "undefined"

    # The same conversation reloaded from the server, then the hostile document itself.
    page.reload()
    assert watch_answer(page)[-1]["state"] == "done"
    assert messages.locator("img, script, iframe, [onerror]").count() == 0
    page.locator(".sources a.source-link", has_text="Zebra memo").click()
    page.wait_for_url(re.compile(r"/source/\d+/"))
    expect()(page.locator("h1")).to_have_text('Zebra memo <img src=x onerror="window.__pwned=1">')
    expect()(page.locator(".chunk.highlight")).to_contain_text("<script>window.__pwned=3</script>")
    assert page.locator("main img, main script, main [onerror]").count() == 0
    page.wait_for_load_state("networkidle")  # a broken image would have failed to load by now
    assert page.evaluate("typeof window.__pwned") == "undefined"
