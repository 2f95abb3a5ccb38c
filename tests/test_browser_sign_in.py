"""Sign-in with OpenID Connect in Chromium against a real server and the fake Entra ID: the
mapped group claim lets the user read the Engineering collection's answer; signing out ends the
provider session; without the claim at the next sign-in the group, and the answer, are gone."""

import re

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
from tests.fakes.oidc_provider import CLIENT_ID, CLIENT_SECRET, FakeOpenIDProvider

pytestmark = [pytest.mark.browser, pytest.mark.own_configuration]
ENGINEERING_GROUP_ID = "0e5f1a2b-eng0-4c3d-8e9f-000000000002"
ENGINEERING_QUESTION = "Which extension reaches the SEV1 war room conference bridge?"
MAPPING = f"""
from django.contrib.auth.models import Group
from accounts.models import GroupMapping
engineering = Group.objects.get(name="Engineering")
GroupMapping.objects.create(claim="{ENGINEERING_GROUP_ID}", group=engineering)
"""


@pytest.fixture(scope="module")
def idp():
    server = FakeOpenIDProvider()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory, idp):
    require_playwright()
    executable = chromium_path()
    env = {
        "OIDC_DISCOVERY_URL": idp.discovery_url(),
        "OIDC_CLIENT_ID": CLIENT_ID,
        "OIDC_CLIENT_SECRET": CLIENT_SECRET,
    }
    with live_server(tmp_path_factory.mktemp("ragsite-oidc"), MAPPING, **env) as running:
        running.chromium = executable
        yield running


def test_sign_in_maps_the_directory_group_and_sign_out_ends_the_provider_session(server, idp):
    from playwright.sync_api import expect

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=server.chromium, args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=server.url)
        context.set_default_timeout(15_000)
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))

        def sign_in(**claims):
            idp.sign_in_as(sub="sub-olivia", preferred_username="olivia@contoso.example", **claims)
            page.goto("/")
            page.get_by_role("link", name="Log in", exact=True).click()
            page.get_by_role("link", name="Sign in with Microsoft Entra ID").click()
            page.wait_for_url(re.compile(r"/$"))
            expect(page.locator(".topnav")).to_contain_text("olivia@contoso.example")

        def answer() -> str:
            ask(page, ENGINEERING_QUESTION)
            assert watch_answer(page)[-1]["state"] == "done"
            return page.locator(".msg-assistant .answer").last.text_content()

        sign_in(groups=[ENGINEERING_GROUP_ID])
        assert "7777" in answer()

        page.get_by_role("button", name="Log out").click()
        page.wait_for_url(re.compile(r"/$"))
        expect(page.get_by_role("link", name="Log in", exact=True)).to_be_visible()
        assert len(idp.logouts) == 1 and idp.logouts[0]["id_token_hint"]

        sign_in(groups=[])  # the directory dropped the group
        assert "7777" not in answer()
        browser.close()
        assert not errors, errors
