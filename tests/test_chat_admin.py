"""Staff review conversations and feedback in the admin: what users asked, what they were told
and which sources they were shown, read-only, so the record stays as it happened."""

import pytest

from chat.models import Conversation, Feedback, Message

pytestmark = pytest.mark.django_db

ANSWER = "You can carry over five unused vacation days. " * 6  # longer than the list shows


@pytest.fixture
def conversation(admin_user):
    conversation = Conversation.objects.create(owner=admin_user, title="Vacation carry-over")
    Message.objects.create(
        conversation=conversation, role="user", content="How many days carry over?"
    )
    source = {"url": "/source/7/#leave", "citation": "Handbook: Leave policy"}
    answer = Message.objects.create(
        conversation=conversation,
        role="assistant",
        content=ANSWER,
        context={"data_points": {"sources": [source]}},
    )
    Feedback.objects.create(message=answer, user=admin_user, helpful=True, comment="Clear.")
    return conversation


def test_a_conversation_shows_its_messages_and_the_sources_shown_and_cannot_be_changed(
    admin_client, conversation
):
    listed = admin_client.get("/admin/chat/conversation/").content.decode()
    assert "Vacation carry-over" in listed
    assert '<td class="field-message_count">2</td>' in listed
    page = admin_client.get(f"/admin/chat/conversation/{conversation.pk}/change/")
    html = page.content.decode()
    assert page.status_code == 200 and "How many days carry over?" in html
    assert '<a href="/source/7/#leave">Handbook: Leave policy</a>' in html
    assert 'name="_save"' not in html  # nothing to save: the record cannot be edited
    assert admin_client.get("/admin/chat/conversation/add/").status_code == 403
    assert (
        admin_client.post(
            f"/admin/chat/conversation/{conversation.pk}/change/", {"title": "Rewritten"}
        ).status_code
        == 403
    )
    conversation.refresh_from_db()
    assert conversation.title == "Vacation carry-over"


def test_feedback_lists_the_verdict_and_the_start_of_the_answer(admin_client, conversation):
    listed = admin_client.get("/admin/chat/feedback/").content.decode()
    assert ANSWER[:100] in listed and ANSWER not in listed  # cut, not the whole answer
    assert 'alt="True"' in listed  # the verdict as the admin's yes icon
    assert "Clear." in listed
    assert admin_client.get("/admin/chat/feedback/add/").status_code == 403
