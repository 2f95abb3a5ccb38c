"""Sign-in with a certificate credential instead of a client secret: the token request carries a
client assertion (private_key_jwt) signed with the app's key, which the fake Entra ID verifies in
full against the certificate registered for the app (signature, aud = its token endpoint,
iss = sub = the client id, exp, a jti never seen before)."""

import time
import uuid

import jwt
import pytest
import requests
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured

from accounts import client_assertion
from accounts.models import GroupMapping
from tests.asgi_client import Client
from tests.chat_helpers import build_kb
from tests.fakes.oidc_provider import (
    ASSERTION_TYPE,
    CLIENT_ID,
    CLIENT_SECRET,
    client_certificate,
    pem,
    thumbprint,
)
from tests.oidc_helpers import HR_GROUP_ID, sign_in

pytestmark = pytest.mark.django_db(transaction=True)
ANNA = {"sub": "sub-anna", "preferred_username": "anna@contoso.example"}


@pytest.fixture
def app_certificate(fake_idp, settings, tmp_path):
    """A certificate-only app registration: the provider knows the certificate and no secret;
    this host has the key and the certificate in one PEM file."""
    key, certificate = client_certificate()
    fake_idp.client_secret = None
    fake_idp.client_certificates.append(certificate)
    path = tmp_path / "ragsite-app.pem"
    path.write_bytes(pem(key, certificate))
    settings.OIDC_CLIENT_SECRET = ""
    settings.OIDC_CLIENT_CERTIFICATE = str(path)
    client_assertion.forget()
    yield key, certificate, path
    client_assertion.forget()


def test_sign_in_with_a_certificate_instead_of_a_secret(fake_idp, app_certificate):
    kb = build_kb()
    GroupMapping.objects.create(claim=HR_GROUP_ID, group=kb["hr"])
    client = Client()
    response = sign_in(client, fake_idp, **ANNA, groups=[HR_GROUP_ID])
    assert response.status_code == 302 and response["Location"] == "/"
    user = get_user_model().objects.get(external_identity__subject="sub-anna")
    assert list(user.groups.values_list("name", flat=True)) == ["HR"]
    # A second sign-in: a fresh assertion (a new jti), accepted too.
    sign_in(Client(), fake_idp, **ANNA)
    assert fake_idp.client_auth == ["assertion", "assertion"]
    assert len(fake_idp.seen_jti) == 2


def test_a_certificate_the_provider_does_not_know_fails_back_to_the_login_page(
    fake_idp, app_certificate, settings, tmp_path
):
    key, certificate = client_certificate("not registered")
    path = tmp_path / "other.pem"
    path.write_bytes(pem(key, certificate))
    settings.OIDC_CLIENT_CERTIFICATE = str(path)
    client_assertion.forget()
    response = sign_in(Client(), fake_idp, **ANNA)
    assert response.status_code == 302 and "sign_in=failed" in response["Location"]
    assert fake_idp.client_auth == ["unknown certificate"]
    assert not get_user_model().objects.filter(username="anna@contoso.example").exists()


def test_the_assertion_is_what_entra_expects(fake_idp, app_certificate, settings):
    _, certificate, _ = app_certificate
    endpoint = fake_idp.token_endpoint()
    token = client_assertion.assertion(endpoint)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256" and header["x5t"] == thumbprint(certificate)
    claims = jwt.decode(
        token, certificate.public_key(), algorithms=["RS256"], audience=endpoint, issuer=CLIENT_ID
    )
    assert claims["sub"] == CLIENT_ID and uuid.UUID(claims["jti"])
    assert 0 < claims["exp"] - time.time() <= client_assertion.LIFETIME_SECONDS
    assert client_assertion.assertion(endpoint) != token  # one per request
    payload = client_assertion.authenticate_payload(
        {"client_id": CLIENT_ID, "client_secret": "", "code": "c"}, endpoint
    )
    assert "client_secret" not in payload and payload["client_assertion_type"] == ASSERTION_TYPE


def _assertion(key, certificate, endpoint, *, alg="RS256", **overrides) -> str:
    now = int(time.time())
    claims = {"aud": endpoint, "iss": CLIENT_ID, "sub": CLIENT_ID, "jti": str(uuid.uuid4())}
    claims |= {"iat": now, "nbf": now, "exp": now + 300}
    claims |= overrides
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm=alg, headers={"x5t": thumbprint(certificate)})


def _token_request(fake_idp, assertion: str, **form) -> requests.Response:
    data = {
        "client_id": CLIENT_ID,
        "grant_type": "authorization_code",
        "code": "unused",
        "redirect_uri": "http://testserver/accounts/oidc/callback/",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
        **form,
    }
    return requests.post(fake_idp.token_endpoint(), data=data, timeout=10)


def test_the_fake_provider_verifies_the_assertion_in_full(fake_idp, app_certificate):
    key, certificate, _ = app_certificate
    endpoint = fake_idp.token_endpoint()
    other_key, _ = client_certificate("attacker")
    now = int(time.time())
    bad = {
        "signed with another key": _assertion(other_key, certificate, endpoint),
        "another audience": _assertion(key, certificate, endpoint + "/x"),
        "another issuer": _assertion(key, certificate, endpoint, iss="someone-else"),
        "another subject": _assertion(key, certificate, endpoint, sub="someone-else"),
        "expired": _assertion(key, certificate, endpoint, exp=now - 10, iat=now - 400),
        "too long-lived": _assertion(key, certificate, endpoint, exp=now + 3600),
        "no jti": _assertion(key, certificate, endpoint, jti=None),
        "no exp": _assertion(key, certificate, endpoint, exp=None),
        "HMAC": _assertion("x" * 32, certificate, endpoint, alg="HS256"),
    }
    for why, assertion in bad.items():
        response = _token_request(fake_idp, assertion)
        assert response.status_code == 401, why
        assert response.json()["error"] == "invalid_client", why
    # A good one passes client authentication (the code is made up, so the grant fails), once.
    good = _assertion(key, certificate, endpoint)
    assert _token_request(fake_idp, good).json() == {"error": "invalid_grant"}
    assert "replayed" in _token_request(fake_idp, good).json()["why"]
    # Neither the secret beside an assertion nor a secret the registration no longer has.
    fresh = _assertion(key, certificate, endpoint)
    assert _token_request(fake_idp, fresh, client_secret=CLIENT_SECRET).status_code == 401
    form = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "code": "unused"}
    response = requests.post(fake_idp.token_endpoint(), data=form, timeout=10)
    assert response.status_code == 401 and response.json()["why"] == "bad secret"


@pytest.mark.parametrize("problem", ["no certificate", "another key's", "not a PEM", "missing"])
def test_an_unusable_certificate_file_is_named_with_the_reason(settings, tmp_path, problem):
    key, certificate = client_certificate()
    path = tmp_path / "app.pem"
    contents = {
        "no certificate": pem(key),
        "another key's": pem(client_certificate()[0], certificate),
        "not a PEM": b"hello",
    }
    if problem in contents:
        path.write_bytes(contents[problem])
    settings.OIDC_CLIENT_CERTIFICATE = str(path)
    settings.OIDC_CLIENT_CERTIFICATE_PASSWORD = ""
    client_assertion.forget()
    with pytest.raises(client_assertion.CertificateError, match=str(path)):
        client_assertion.assertion("https://login.example/token")
    client_assertion.forget()


@pytest.mark.parametrize(
    "env, problem",
    [
        ({}, "OIDC_CLIENT_SECRET"),
        ({"OIDC_CLIENT_SECRET": "s", "OIDC_CLIENT_CERTIFICATE": "app.pem"}, "OIDC_CLIENT_SECRET"),
        ({"OIDC_CLIENT_CERTIFICATE": "/nonexistent/app.pem"}, "OIDC_CLIENT_CERTIFICATE"),
    ],
)
def test_settings_want_exactly_one_client_credential(monkeypatch, env, problem):
    import importlib

    import ragsite.settings

    monkeypatch.setenv("OIDC_DISCOVERY_URL", "https://login.example/t/v2.0/.well-known/x")
    monkeypatch.setenv("OIDC_CLIENT_ID", CLIENT_ID)
    for name in ("OIDC_CLIENT_SECRET", "OIDC_CLIENT_CERTIFICATE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ImproperlyConfigured, match=problem):
        importlib.reload(ragsite.settings)
    monkeypatch.undo()
    importlib.reload(ragsite.settings)
