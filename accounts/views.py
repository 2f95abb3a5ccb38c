"""A signed-in user's own API keys: list, create (the key is shown once), revoke."""

from django import forms
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts import api_keys
from accounts.models import ApiKey

MAX_KEYS_PER_USER = 20


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
def keys(request):
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
def revoke(request, key_id: int):
    row = get_object_or_404(ApiKey, pk=key_id, user=request.user)
    if not row.revoked:
        row.revoked = True
        row.save(update_fields=["revoked"])
    return redirect("accounts:keys")
