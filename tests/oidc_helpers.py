"""The fake OpenID provider wired into the settings, and a browser's sign-in through it."""

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from accounts import bearer, provider
from tests.fakes.oidc_provider import API_AUDIENCE, CLIENT_ID, CLIENT_SECRET, FakeOpenIDProvider

HR_GROUP_ID = "6f1c4a52-hr00-4d1e-9c1a-000000000001"  # an Entra group's object id
ADMINS_ROLE = "Ragsite.Admins"  # an app role


@pytest.fixture
def fake_idp(settings):
    server = FakeOpenIDProvider()
    server.start()
    settings.OIDC_ENABLED = True
    settings.OIDC_DISCOVERY_URL = server.discovery_url()
    settings.OIDC_CLIENT_ID = CLIENT_ID
    settings.OIDC_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_API_AUDIENCE = API_AUDIENCE
    settings.OIDC_STAFF_CLAIM = ADMINS_ROLE
    provider.forget()
    bearer.forget()
    yield server
    provider.forget()
    bearer.forget()
    server.stop()


def sign_in(client, server, **claims):
    """Sign in as a browser does: to the provider and back. The last response."""
    server.sign_in_as(**claims)
    start = client.get("/accounts/oidc/authenticate/", {"next": "/"})
    assert start.status_code == 302, start.content
    # The browser at the provider (real HTTP): it redirects back with a code.
    at_provider = requests.get(start["Location"], allow_redirects=False, timeout=10)
    assert at_provider.status_code == 302, at_provider.text
    back = urlsplit(at_provider.headers["Location"])
    return client.get(back.path, {k: v[0] for k, v in parse_qs(back.query).items()})
