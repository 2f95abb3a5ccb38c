"""Property: whoever asks, through whichever channel, finds exactly what they may read, while
documents, groups and users change between the questions and the index syncs only now and then.

A hypothesis state machine adds documents and users, restricts and opens documents, publishes,
unpublishes and deletes them, moves users between groups, demotes, promotes, deactivates and
reactivates them, syncs the index (sometimes), and asks. Every answer must hold in both directions:
nothing from a document the asker may not read now (by its row) is returned, cited, quoted or
shown; and every document they may read, and that the index already holds with access for them,
is found by its own unique word. The same for a collection override, and a collection the asker
may read nothing in answers like a missing one.

Programs ask too: with each user's API key (revoked now and then; a forged key for anyone
else), and with the identity provider's access tokens carrying random group and role claims for
a few subjects (valid, or expired, forged, for another audience or tenant). A key reads exactly
what its user may, a token what its mapped claims grant; a bad credential is refused outright.

The default run is short; RAGSITE_TEST_LONG=1 (make test-long) runs at least 200 examples.
"""

import asyncio
import io
import json
import os
import re
import uuid
from dataclasses import dataclass, field

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import Group, User
from django.core.files.base import ContentFile
from django.core.management import call_command
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from accounts import api_keys, bearer
from accounts.models import GroupMapping
from chat.models import Conversation
from knowledge.models import Collection, Document
from tests.asgi_client import server_loop
from tests.bearer_helpers import ws_open
from tests.chat_helpers import ws_connect
from tests.fakes.oidc_provider import OTHER_TENANT, SigningKey

pytestmark = pytest.mark.django_db(transaction=True)

LONG = os.environ.get("RAGSITE_TEST_LONG") == "1"
GROUPS = ("red", "green", "blue")
COLLECTIONS = ("alpha", "beta")
CHANNELS = ("chat", "stream", "websocket", "search", "key-chat", "key-stream", "key-websocket")
TOKEN_CHANNELS = ("key-chat", "key-stream", "key-websocket")  # any bearer credential
CLAIMS = ("claim-red", "claim-green", "claim-blue", "Ragsite.Admins")  # claim-blue is unmapped
BAD_TOKENS = ("valid", "valid", "expired", "forged", "audience", "tenant")
MAX_DOCUMENTS = 7
MAX_USERS = 3


@dataclass
class Doc:
    pk: int
    token: str
    groups: set
    published: bool
    collection: str
    deleted: bool = False


@dataclass
class Person:
    user: User
    client: object
    groups: set = field(default_factory=set)
    staff: bool = False
    active: bool = True
    key: str = ""
    key_revoked: bool = False


@dataclass(frozen=True)
class Access:
    all: bool = False
    public: bool = True
    groups: frozenset = frozenset()

    def reads(self, groups, published=True) -> bool:
        if not published:
            return False
        return self.all or (self.public and not groups) or bool(self.groups & set(groups))


NOTHING = Access(public=False)


class AccessMachine(RuleBasedStateMachine):
    """What the rows say (self.docs), what the index last saw (self.indexed), and the askers."""

    new_client = None  # set by the test: a client of the suite's kind
    django_settings = None
    idp = None  # the fake identity provider

    def __init__(self):
        super().__init__()
        self.run = uuid.uuid4().hex[:6]
        self.docs: list[Doc] = []
        self.indexed: dict[int, tuple[frozenset, str]] = {}
        self.people: list[Person] = []
        self.groups = {name: Group.objects.create(name=f"{name}-{self.run}") for name in GROUPS}
        self.collections = {
            slug: Collection.objects.create(name=f"{slug}-{self.run}", slug=f"{slug}-{self.run}")
            for slug in COLLECTIONS
        }
        self.anonymous_allowed = True
        for claim in ("claim-red", "claim-green"):
            GroupMapping.objects.create(claim=claim, group=self.groups[claim.split("-")[1]])

    @initialize(allowed=st.booleans())
    def anonymous_chat(self, allowed):
        self.anonymous_allowed = allowed
        self.django_settings.CHAT_ALLOW_ANONYMOUS = allowed

    def teardown(self):
        bearer.forget()
        Conversation.objects.all().delete()
        Document.objects.all().delete()
        call_command(
            "sync_index", verbosity=0, stdout=io.StringIO()
        )  # the index forgets this example's documents
        Collection.objects.all().delete()
        User.objects.all().delete()
        Group.objects.all().delete()

    # -- documents ----------------------------------------------------------------------------

    @precondition(lambda self: len(self.docs) < MAX_DOCUMENTS)
    @rule(
        groups=st.sets(st.sampled_from(GROUPS), max_size=2),
        published=st.booleans(),
        collection=st.sampled_from(COLLECTIONS),
    )
    def add_document(self, groups, published, collection):
        token = f"zq{self.run}x{len(self.docs)}"
        doc = Document(
            title=f"Note {token}",
            body=f"The code word {token} opens locker {token} for the team.",
            published=published,
            collection=self.collections[collection],
        )
        # An uploaded original too, which /source/<id>/original streams to those who may read.
        doc.file.save(f"{token}.txt", ContentFile(f"Original of {token}.".encode()), save=False)
        doc.save()
        doc.groups.set([self.groups[g] for g in groups])
        self.docs.append(Doc(doc.pk, token, set(groups), published, collection))

    def _live(self):
        return [d for d in self.docs if not d.deleted]

    @precondition(lambda self: any(not d.deleted for d in self.docs))
    @rule(pick=st.integers(0, 99), group=st.sampled_from(GROUPS))
    def toggle_document_group(self, pick, group):
        doc = self._live()[pick % len(self._live())]
        row = Document.objects.get(pk=doc.pk)
        if group in doc.groups:
            row.groups.remove(self.groups[group])
            doc.groups.discard(group)
        else:
            row.groups.add(self.groups[group])
            doc.groups.add(group)

    @precondition(lambda self: any(not d.deleted for d in self.docs))
    @rule(pick=st.integers(0, 99))
    def toggle_published(self, pick):
        doc = self._live()[pick % len(self._live())]
        row = Document.objects.get(pk=doc.pk)
        row.published = doc.published = not doc.published
        row.save()

    @precondition(lambda self: any(not d.deleted for d in self.docs))
    @rule(pick=st.integers(0, 99))
    def delete_document(self, pick):
        doc = self._live()[pick % len(self._live())]
        Document.objects.filter(pk=doc.pk).delete()
        doc.deleted = True

    @rule()
    def sync_index(self):
        call_command("sync_index", verbosity=0, stdout=io.StringIO())
        self.indexed = {
            d.pk: (frozenset(d.groups), d.collection)
            for d in self.docs
            if d.published and not d.deleted
        }

    # -- users --------------------------------------------------------------------------------

    @precondition(lambda self: len(self.people) < MAX_USERS)
    @rule(groups=st.sets(st.sampled_from(GROUPS), max_size=2), staff=st.booleans())
    def add_user(self, groups, staff):
        user = User.objects.create_user(
            f"u{self.run}{len(self.people)}", password="x", is_staff=staff
        )
        user.groups.set([self.groups[g] for g in groups])
        client = self.new_client()
        client.force_login(user)
        key = api_keys.create_key(user, "property")[1]
        self.people.append(Person(user, client, set(groups), staff, key=key))

    @precondition(lambda self: self.people)
    @rule(pick=st.integers(0, 99))
    def revoke_or_replace_key(self, pick):
        person = self.people[pick % len(self.people)]
        if person.key_revoked:
            person.key, person.key_revoked = api_keys.create_key(person.user, "again")[1], False
        else:
            api_keys.revoke(api_keys.parse(person.key))
            person.key_revoked = True

    @precondition(lambda self: self.people)
    @rule(pick=st.integers(0, 99), group=st.sampled_from(GROUPS))
    def toggle_user_group(self, pick, group):
        person = self.people[pick % len(self.people)]
        if group in person.groups:
            person.user.groups.remove(self.groups[group])
            person.groups.discard(group)
        else:
            person.user.groups.add(self.groups[group])
            person.groups.add(group)

    @precondition(lambda self: self.people)
    @rule(pick=st.integers(0, 99), staff=st.booleans(), active=st.booleans())
    def change_user(self, pick, staff, active):
        """Promote or demote, deactivate or reactivate."""
        person = self.people[pick % len(self.people)]
        person.user.is_staff = person.staff = staff
        person.user.is_active = person.active = active
        person.user.save(update_fields=["is_staff", "is_active"])

    # -- asking -------------------------------------------------------------------------------

    def _access(self, person: Person | None, channel: str) -> Access | None:
        """What the asker may read now; None when the chat refuses them (401)."""
        if channel in TOKEN_CHANNELS:  # a forged key, a revoked one, a deactivated user's: 401
            if person is None or person.key_revoked or not person.active:
                return None
            return Access(all=True) if person.staff else Access(groups=frozenset(person.groups))
        if person is None or not person.active:
            if person is not None and channel == "search":
                return NOTHING  # `search --user` names an inactive account: it reads nothing
            if channel == "search":
                return Access() if self.anonymous_allowed else NOTHING
            return Access() if self.anonymous_allowed else None
        if person.staff:
            return Access(all=True)
        return Access(groups=frozenset(person.groups))

    def _expected(self, access: Access, collection: str | None) -> set[str]:
        found = set()
        for doc in self._live():
            if collection and doc.collection != collection:
                continue
            if not access.reads(doc.groups, doc.published):
                continue  # the row says no
            if doc.pk not in self.indexed:
                continue  # the index does not hold it (yet)
            indexed_groups, _ = self.indexed[doc.pk]
            if access.reads(indexed_groups):  # the index's own filter, the first line
                found.add(doc.token)
        return found

    @rule(
        questions=st.lists(
            st.tuples(
                st.integers(-1, MAX_USERS - 1),
                st.sampled_from(CHANNELS),
                st.sampled_from([None, *COLLECTIONS]),
            ),
            min_size=1,
            max_size=4,
        )
    )
    def ask(self, questions):
        """A few askers (-1 and unknown numbers: anonymous), each on one channel."""
        for who, channel, collection in questions:
            self._check(who, channel, collection)

    @rule(
        subject=st.integers(0, 2),
        claims=st.sets(st.sampled_from(CLAIMS)),
        kind=st.sampled_from(BAD_TOKENS),
        channel=st.sampled_from(TOKEN_CHANNELS),
        collection=st.sampled_from([None, *COLLECTIONS]),
    )
    def ask_with_a_token(self, subject, claims, kind, channel, collection):
        """A program with the provider's access token: its claims decide, whatever the same
        subject's earlier tokens said; a bad token is refused."""
        body = {"sub": f"sub-{self.run}-{subject}", "groups": sorted(claims - {CLAIMS[-1]})}
        body["roles"] = [CLAIMS[-1]] if CLAIMS[-1] in claims else []
        token = {
            "valid": lambda: self.idp.mint(body),
            "expired": lambda: self.idp.mint(body, lifetime=-120),
            "forged": lambda: self.idp.mint(body, key=SigningKey()),
            "audience": lambda: self.idp.mint(body, audience="api://other"),
            "tenant": lambda: self.idp.mint(body, tenant=OTHER_TENANT),
        }[kind]()
        access = None
        if kind == "valid":
            mapped = {c.split("-")[1] for c in claims if c in ("claim-red", "claim-green")}
            staff = CLAIMS[-1] in claims
            access = Access(all=True) if staff else Access(groups=frozenset(mapped))
        self._check(-1, channel, collection, credential=token, access=access)

    def _check(self, who, channel, collection, credential=None, access=None):
        person = self.people[who] if 0 <= who < len(self.people) else None
        if channel == "search":
            collection = None  # the admin's tool: collections are no secret there
        if credential is None:
            access = self._access(person, channel)
            if channel in TOKEN_CHANNELS:
                credential = person.key if person is not None else _forged_key()
        slug = self.collections[collection].slug if collection else None
        question = " ".join(d.token for d in self.docs) or "nothing"
        status, found, raw = self._ask(person, channel, question, slug, credential)

        forbidden = [d for d in self.docs if access is None or not self._row_reads(access, d)]
        for doc in forbidden:
            assert f"locker {doc.token}" not in raw, (channel, doc, access)
            assert f"Note {doc.token}" not in raw, (channel, doc, access)
        if access is None:
            assert status in ((401, 4401) if channel in TOKEN_CHANNELS else (401, None)), (
                channel,
                status,
            )
            assert not found
            return
        if (
            collection
            and not access.all
            and not any(
                self._row_reads(access, d) and d.collection == collection for d in self._live()
            )
        ):
            assert status == 400 and "no collection" in raw, (channel, status, raw[:300])
            return
        assert status == 200, (channel, status, raw[:300])
        assert found == self._expected(access, collection), (channel, access, collection)

    def _row_reads(self, access: Access, doc: Doc) -> bool:
        return not doc.deleted and access.reads(doc.groups, doc.published)

    def _ask(
        self, person, channel, question, slug, credential=None
    ) -> tuple[int | None, set[str], str]:
        tokens = {d.token: d for d in self.docs}
        if channel == "search":
            out = io.StringIO()
            args = [question, "--top", "50"]
            if person is not None:
                args += ["--user", person.user.username]
            call_command("search", *args, stdout=out)
            raw = out.getvalue()
            # a hit's line: "[citation]  title  (collection)"; the citation names the uploaded
            # original's file, the title is the document's own
            titled = set(re.findall(r"\]  Note (\S+)", raw))
            return 200, {t for t in tokens if t in titled}, raw
        overrides = {"top": 50, "suggest_followup_questions": True, "render_html": True}
        if slug:
            overrides["collection"] = slug
        body = {
            "messages": [{"role": "user", "content": question}],
            "context": {"overrides": overrides},
        }
        client = person.client if person is not None else self.new_client()
        if channel == "key-websocket":
            status, events = _websocket(None, body, credential)
        elif channel in TOKEN_CHANNELS:
            # Sent from a fresh client: no session cookie to fall back on.
            response = self.new_client().post(
                "/chat" if channel == "key-chat" else "/chat/stream",
                data=json.dumps(body),
                content_type="application/json",
                headers={"Authorization": f"Bearer {credential}"},
            )
            status, events = response.status_code, _events(response)
        elif channel == "websocket":
            status, events = _websocket(client if person is not None else None, body)
        else:
            endpoint = "/chat" if channel == "chat" else "/chat/stream"
            response = client.post(endpoint, data=json.dumps(body), content_type="application/json")
            status, events = response.status_code, _events(response)
        raw = json.dumps(events)
        found = set()
        for event in events:
            for source in (event.get("context") or {}).get("data_points", {}).get("sources", []):
                title = source["title"]
                found |= {t for t in tokens if title == f"Note {t}"}
        return status, found, raw

    @precondition(lambda self: self.docs)
    @rule(pick=st.integers(0, 99), who=st.integers(-1, MAX_USERS - 1))
    def open_source_page(self, pick, who):
        doc = self.docs[pick % len(self.docs)]
        person = self.people[who] if 0 <= who < len(self.people) else None
        access = self._access(person, "page") or NOTHING
        client = person.client if person is not None else self.new_client()
        status = client.get(f"/source/{doc.pk}/").status_code
        assert status == (200 if self._row_reads(access, doc) else 404), (doc, access)
        original = client.get(f"/source/{doc.pk}/original")
        assert original.status_code == status, (doc, access)
        if status == 200:
            body = original.content
            assert body == f"Original of {doc.token}.".encode()


def _events(response) -> list[dict]:
    if not response.streaming:
        return [json.loads(response.content)]

    content = response.streaming_content
    if hasattr(content, "__aiter__"):

        async def collect():
            return b"".join([chunk async for chunk in content])

        raw = async_to_sync(collect)()
    else:
        raw = b"".join(content)
    return [json.loads(line) for line in raw.decode().splitlines() if line.strip()]


def _forged_key() -> str:
    return f"rsk_{uuid.uuid4().hex[:12]}_{'F' * 43}"


def _websocket(client, body, credential=None) -> tuple[int | None, list[dict]]:
    """(200, events) for an answer, (400, [error]) for a refused question, (None, []) when the
    socket is refused, (4401, []) when its credential is."""

    async def talk():
        if credential is not None:
            socket, connected = await ws_open(f"Bearer {credential}")
        else:
            cookie = f"sessionid={client.cookies['sessionid'].value}" if client else None
            socket, connected, _ = await ws_connect(cookie=cookie)
        if not connected:
            return None, []
        await socket.send_to(text_data=json.dumps({"type": "chat", **body}))
        events = []
        try:
            while True:
                message = await socket.receive_output(timeout=10)
                if message["type"] == "websocket.close":
                    return message.get("code"), events
                event = json.loads(message["text"])
                events.append(event)
                if "error" in event and "type" not in event:
                    return 400, events
                if event.get("type") == "response.completed":
                    return 200, events
        finally:
            await socket.disconnect()

    async def bounded():
        return await asyncio.wait_for(talk(), 30)

    # On the loop that serves the sync client's requests, so that the clients the socket's turn
    # builds there (channel layer, limits, search) are closed with the others at the end.
    return server_loop().run(bounded)


def test_every_channel_finds_exactly_what_the_rows_allow(
    transactional_db, settings, client, fake_idp
):
    settings.CHAT_STREAM_DELAY_SECONDS = 0
    AccessMachine.idp = fake_idp
    # Many questions from one address in a few seconds: the abuse limits are not under test.
    settings.CHAT_RATE_LIMIT = settings.CHAT_RATE_LIMIT_PER_IP = None
    AccessMachine.django_settings = settings
    AccessMachine.new_client = staticmethod(lambda: type(client)())
    run_state_machine_as_test(
        AccessMachine,
        settings=settings_for_run(),
    )


def settings_for_run():
    return hypothesis_settings(
        max_examples=200 if LONG else 25,
        stateful_step_count=30 if LONG else 15,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
