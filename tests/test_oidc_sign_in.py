"""Sign-in with OpenID Connect through a fake Entra ID over real HTTP: group and app-role claims
mapped to Django groups at every sign-in (removed ones removed), staff from a role, local
accounts never taken over, keys that rotate, failures back to the login page, and sign-out
ending the provider's session."""

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from accounts import provider
from accounts.models import ExternalIdentity, GroupMapping
from tests.asgi_client import Client
from tests.chat_helpers import build_kb
from tests.oidc_helpers import ADMINS_ROLE, HR_GROUP_ID, sign_in

pytestmark = pytest.mark.django_db(transaction=True)
SALARY = {"messages": [{"role": "user", "content": "What does L4 pay per year?"}]}
ANNA = {"sub": "sub-anna", "preferred_username": "anna@contoso.example", "given_name": "Anna"}


@pytest.fixture
def kb(transactional_db):
    kb = build_kb()
    GroupMapping.objects.create(claim=HR_GROUP_ID, group=kb["hr"])
    return kb


def _salary_answer(client) -> str:
    response = client.post("/chat", data=json.dumps(SALARY), content_type="application/json")
    assert response.status_code == 200
    return response.content.decode()


def test_groups_follow_the_directory_at_every_sign_in(kb, fake_idp):
    client = Client()
    response = sign_in(client, fake_idp, **ANNA, groups=[HR_GROUP_ID, "unmapped-group"])
    assert response.status_code == 302 and response["Location"] == "/"
    user = get_user_model().objects.get(external_identity__subject="sub-anna")
    assert user.username == "anna@contoso.example" and user.first_name == "Anna"
    assert list(user.groups.values_list("name", flat=True)) == ["HR"]
    assert not user.has_usable_password()
    assert "78,000" in _salary_answer(client)
    page = client.get("/").content.decode()
    assert "anna@contoso.example" in page  # the chat page shows who is signed in
    # A group staff gave by hand is no mapping's business and stays.
    user.groups.add(Group.objects.create(name="Book club"))
    # Removed from the HR group in the directory: gone at the next sign-in.
    client = Client()
    sign_in(client, fake_idp, **ANNA, groups=["unmapped-group"])
    assert sorted(user.groups.values_list("name", flat=True)) == ["Book club"]
    assert "78,000" not in _salary_answer(client)
    assert get_user_model().objects.filter(external_identity__isnull=False).count() == 1


def test_staff_status_follows_the_configured_role(kb, fake_idp):
    sign_in(Client(), fake_idp, **ANNA, roles=[ADMINS_ROLE])
    user = get_user_model().objects.get(external_identity__subject="sub-anna")
    assert user.is_staff and not user.is_superuser
    sign_in(Client(), fake_idp, **ANNA, roles=[])
    user.refresh_from_db()
    assert not user.is_staff


def test_a_local_account_of_the_same_name_is_never_taken_over(kb, fake_idp, make_user):
    local = make_user("erin", "HR")
    sign_in(Client(), fake_idp, sub="sub-x", preferred_username="erin")
    outsider = ExternalIdentity.objects.get(subject="sub-x").user
    assert outsider.pk != local.pk and outsider.username.startswith("erin-")
    assert not outsider.groups.exists()
    local.refresh_from_db()
    assert local.check_password("pw-erin-1")  # the local account still signs in as before


def test_sign_in_still_works_after_the_provider_rotates_its_keys(kb, fake_idp, settings):
    settings.OIDC_KEYS_REFRESH_COOLDOWN_SECONDS = 0  # the rotation comes at once, not 30 s later
    provider.forget()
    sign_in(Client(), fake_idp, **ANNA)
    fake_idp.rotate()  # a new signing key; the old one no longer published
    client = Client()
    response = sign_in(client, fake_idp, **ANNA, groups=[HR_GROUP_ID])
    assert response["Location"] == "/"
    assert "78,000" in _salary_answer(client)


def test_a_failed_sign_in_returns_to_the_login_page(kb, fake_idp, settings):
    settings.OIDC_CLIENT_SECRET = "not-the-secret"  # the token endpoint refuses it
    client = Client()
    response = sign_in(client, fake_idp, **ANNA)
    assert response.status_code == 302 and "sign_in=failed" in response["Location"]
    page = client.get(response["Location"]).content.decode()
    assert "did not work" in page
    assert not get_user_model().objects.filter(username="anna@contoso.example").exists()


def test_the_login_page_offers_the_provider_and_local_accounts(kb, fake_idp):
    page = Client().get("/accounts/login/").content.decode()
    assert "Sign in with Microsoft Entra ID" in page and 'name="password"' in page


def test_sign_out_ends_the_provider_session(kb, fake_idp):
    client = Client()
    sign_in(client, fake_idp, **ANNA)
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    target = urlsplit(response["Location"])
    assert response["Location"].startswith(fake_idp.issuer().removesuffix("/v2.0"))
    query = parse_qs(target.query)
    assert query["id_token_hint"] and query["post_logout_redirect_uri"] == ["http://testserver/"]
    back = requests.get(response["Location"], allow_redirects=False, timeout=10)
    assert back.headers["Location"] == "http://testserver/" and len(fake_idp.logouts) == 1
    assert "Log in" in client.get("/").content.decode()  # signed out here too


def test_a_local_sign_out_stays_local(kb, fake_idp, make_user):
    client = Client()
    client.force_login(make_user("erin"))
    response = client.post("/accounts/logout/")
    assert response["Location"] == "/" and not fake_idp.logouts
