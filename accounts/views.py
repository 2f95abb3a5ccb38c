"""A signed-in user's own API keys: list, create (the key is shown once), revoke; and websocket
tickets for a bearer credential (accounts/tickets.py)."""

from datetime import datetime

from asgiref.sync import sync_to_async
from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from accounts import api_keys, bearer, tickets
from accounts.identity import InvalidCredential
from accounts.models import ApiKey
from core.db import release_db
from core.responses import json_error, private

MAX_KEYS_PER_USER = 20


class SignedInRequest(HttpRequest):
    """The request of a view behind login_required, whose user is never anonymous."""

    user: User


class NewKeyForm(forms.Form):
    name = forms.CharField(max_length=100)
    expires_days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=3650,
        label="Expires after (days)",
        help_text="Empty: never expires.",
    )


@login_required
def keys(request: SignedInRequest) -> HttpResponse:
    form = NewKeyForm(request.POST or None)
    own = ApiKey.objects.filter(user=request.user)
    if request.method == "POST" and form.is_valid():
        if own.filter(revoked=False).count() >= MAX_KEYS_PER_USER:
            form.add_error(None, f"You have {MAX_KEYS_PER_USER} keys: revoke one first.")
        else:
            row, key = api_keys.create_key(
                request.user, form.cleaned_data["name"], form.cleaned_data["expires_days"]
            )
            return render(request, "accounts/key_created.html", {"key": key, "row": row})
    return render(request, "accounts/keys.html", {"form": form, "keys": own})


@login_required
@require_POST
def revoke(request: SignedInRequest, key_id: int) -> HttpResponseRedirect:
    row = get_object_or_404(ApiKey, pk=key_id, user=request.user)
    if not row.revoked:
        row.revoked = True
        row.save(update_fields=["revoked"])
    return redirect("accounts:keys")


@csrf_exempt  # a bearer credential only: no cookie is read, so no page can borrow one
async def socket_ticket(request: HttpRequest) -> JsonResponse:
    """POST with `Authorization: Bearer <key or token>`: a one-use ticket for `/ws/chat/`."""
    if request.method != "POST":
        return json_error("Use POST with an Authorization header.", 405)
    authorization = request.headers.get("Authorization")
    if authorization is None:
        response = json_error("Send a credential: 'Authorization: Bearer <key>'.", 401)
        response["WWW-Authenticate"] = 'Bearer realm="ragsite"'
        return response
    try:
        identity = await bearer.authenticate(authorization)
    except InvalidCredential as exc:
        response = json_error(exc.description, 401)
        response["WWW-Authenticate"] = exc.www_authenticate
        return response
    try:
        ticket, expires_at = await sync_to_async(_issue, thread_sensitive=False)(
            identity.user, authorization
        )
    except tickets.TooManyTickets as exc:
        return json_error(str(exc), 429, retry_after=settings.WS_TICKET_SECONDS)
    body = {
        "ticket": ticket,
        "expires_in": settings.WS_TICKET_SECONDS,
        "expires_at": expires_at.isoformat(),
        "url": f"/ws/chat/?ticket={ticket}",
    }
    return private(JsonResponse(body))


def _issue(user: User, authorization: str) -> tuple[str, datetime]:
    try:
        return tickets.issue(user, authorization)
    finally:
        release_db()
