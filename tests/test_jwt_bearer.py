"""The identity provider's access tokens as bearer credentials on POST /chat, POST /chat/stream
and the websocket: validated (signature against the provider's rotating keys, algorithm
allow-list, issuer, audience, expiry) and mapped to a user and groups as sign-in maps them; every
bad token is a 401 (websocket: close 4401) with nothing of any document."""

import base64
import hashlib
import hmac
import json

import pytest
from asgiref.sync import sync_to_async
from cryptography.hazmat.primitives import serialization

from accounts import provider
from accounts.models import ExternalIdentity, GroupMapping
from tests.bearer_helpers import CHANNELS, chat_on, http_chat
from tests.chat_helpers import ask, build_kb
from tests.fakes.oidc_provider import OTHER_TENANT, TENANT, SigningKey
from tests.oidc_helpers import HR_GROUP_ID

pytestmark = pytest.mark.django_db(transaction=True)
SALARY = ask("What does L4 pay per year for vacation replacements?")
LEAVE = ask("How many unused vacation days may employees carry over?")
SECRET_BITS = ["78,000", "96,000", "Salary bands"]
PUBLIC_BITS = ["five unused vacation days", "Leave policy"]
APP = {"sub": "sp-nightly", "preferred_username": "nightly-job"}


@pytest.fixture
def kb(transactional_db, fake_idp):
    kb = build_kb()
    GroupMapping.objects.create(claim=HR_GROUP_ID, group=kb["hr"])
    return kb


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_token_reads_what_its_mapped_groups_may(kb, fake_idp, channel):
    member = fake_idp.mint({**APP, "roles": [HR_GROUP_ID]})
    status, text = await chat_on(channel, SALARY, f"Bearer {member}")
    assert status == 200 and "78,000" in text
    user = await ExternalIdentity.objects.select_related("user").aget(subject="sp-nightly")
    assert await user.user.groups.filter(name="HR").aexists()
    stranger = fake_idp.mint({"sub": "sp-other", "groups": ["unmapped"]})
    status, text = await chat_on(channel, SALARY, f"Bearer {stranger}")
    assert status == 200
    for bit in SECRET_BITS:
        assert bit not in text


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hs256_with_public_key(fake_idp) -> str:
    """Algorithm confusion: HMAC keyed with the provider's public key, which anyone can fetch."""
    key = fake_idp.keys[TENANT][0]
    public = key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    good = fake_idp.mint({**APP, "groups": [HR_GROUP_ID]})
    body = good.split(".")[1]
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": key.kid}).encode())
    signature = hmac.new(public, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(signature)}"


BAD = {
    "expired": lambda idp: idp.mint({**APP, "groups": [HR_GROUP_ID]}, lifetime=-120),
    "forged signature": lambda idp: idp.mint({**APP, "groups": [HR_GROUP_ID]}, key=SigningKey()),
    "tampered claims": lambda idp: _tampered(idp),
    "wrong audience": lambda idp: idp.mint(
        {**APP, "groups": [HR_GROUP_ID]}, audience="api://another-app"
    ),
    "wrong issuer": lambda idp: idp.mint(
        {**APP, "groups": [HR_GROUP_ID], "iss": "https://login.evil.example/v2.0"}
    ),
    "alg none": lambda idp: idp.mint({**APP, "groups": [HR_GROUP_ID]}, alg="none"),
    "another tenant": lambda idp: idp.mint({**APP, "groups": [HR_GROUP_ID]}, tenant=OTHER_TENANT),
    "another tenant's key, our issuer": lambda idp: idp.mint(
        {**APP, "groups": [HR_GROUP_ID], "iss": idp.issuer()}, key=idp.keys[OTHER_TENANT][0]
    ),
    "HS256 keyed with the public key": _hs256_with_public_key,
    "no subject": lambda idp: idp.mint({"groups": [HR_GROUP_ID]}),
    "garbage": lambda idp: "eyJhbGciOi.not-a.token",
}


def _tampered(idp) -> str:
    head, body, signature = idp.mint({**APP, "groups": ["unmapped"]}).split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["groups"] = [HR_GROUP_ID]
    return f"{head}.{_b64(json.dumps(claims).encode())}.{signature}"


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("kind", list(BAD))
async def test_bad_tokens_are_refused_with_nothing_of_any_document(kb, fake_idp, channel, kind):
    token = BAD[kind](fake_idp)
    for question in (SALARY, LEAVE):
        status, text = await chat_on(channel, question, f"Bearer {token}")
        assert status == (4401 if channel == "websocket" else 401), text
        for bit in SECRET_BITS + PUBLIC_BITS:
            assert bit not in text
    assert not await ExternalIdentity.objects.aexists()


async def test_a_refusal_says_invalid_token(kb, fake_idp):
    token = fake_idp.mint({**APP}, lifetime=-120)
    status, headers, text = await http_chat("/chat", LEAVE, f"Bearer {token}")
    assert status == 401 and json.loads(text)["error"] == "The token has expired."
    assert headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')


async def test_tokens_signed_with_a_rotated_key_are_accepted(kb, fake_idp, settings):
    settings.OIDC_KEYS_REFRESH_COOLDOWN_SECONDS = 0
    provider.forget()
    first = fake_idp.mint({**APP, "groups": [HR_GROUP_ID]})
    assert (await chat_on("/chat", SALARY, f"Bearer {first}"))[0] == 200
    fake_idp.rotate()
    second = fake_idp.mint({**APP, "groups": [HR_GROUP_ID], "jti": "2"})
    status, text = await chat_on("/chat", SALARY, f"Bearer {second}")
    assert status == 200 and "78,000" in text


async def test_tokens_are_off_without_an_api_audience(kb, fake_idp, settings):
    settings.OIDC_API_AUDIENCE = ""
    token = fake_idp.mint({**APP, "groups": [HR_GROUP_ID]})
    assert (await chat_on("/chat", SALARY, f"Bearer {token}"))[0] == 401
    assert not await sync_to_async(ExternalIdentity.objects.exists)()
