"""Sign-in with OpenID Connect (Microsoft Entra ID, or any provider with a discovery document),
through mozilla-django-oidc's authorization-code flow (state, nonce and PKCE kept in the session).

What is ours: endpoints come from the discovery document (accounts/provider.py), not settings;
the ID token is validated in full there (the library checks neither issuer nor audience); the
claims are the ID token's (Entra's userinfo endpoint carries no groups); and the user and groups
come from accounts/claims.py. Any failure (the provider down, a bad token) sends the browser back
to the login page with a message, never an error page.
"""

import logging
from typing import Any

import jwt
import requests
from django.conf import settings
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.models import User
from django.contrib.auth.views import LogoutView
from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import urlencode
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from accounts import claims as claim_rules
from accounts import client_assertion, provider

log = logging.getLogger(__name__)
ID_TOKEN = "oidc_id_token"


class ProviderBackend(OIDCAuthenticationBackend):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Nothing from the network here: Django builds a backend for every session look-up.
        from django.contrib.auth import get_user_model

        self.UserModel = get_user_model()
        self.OIDC_RP_CLIENT_ID = settings.OIDC_CLIENT_ID
        self.OIDC_RP_CLIENT_SECRET = settings.OIDC_CLIENT_SECRET

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> User | None:
        if not settings.OIDC_ENABLED or "nonce" not in kwargs:
            return None  # only the callback view's call is ours
        try:
            self.OIDC_OP_TOKEN_ENDPOINT = provider.document()["token_endpoint"]
            user: User | None = super().authenticate(request, **kwargs)
            return user
        except (requests.RequestException, ValueError, jwt.PyJWTError, SuspiciousOperation) as exc:
            log.warning("OpenID Connect sign-in failed: %r", exc)
            return None

    def get_token(self, payload: dict[str, Any]) -> dict[str, Any]:
        # With a certificate, the app proves itself with a signed assertion, never a secret.
        if settings.OIDC_CLIENT_CERTIFICATE:
            payload = client_assertion.authenticate_payload(payload, self.OIDC_OP_TOKEN_ENDPOINT)
        tokens: dict[str, Any] = super().get_token(payload)
        return tokens

    def verify_token(self, token: str, **kwargs: Any) -> dict[str, Any]:
        payload = provider.verify(token, audience=settings.OIDC_CLIENT_ID)
        if payload.get("nonce") != kwargs.get("nonce"):
            raise SuspiciousOperation("The ID token's nonce does not match.")
        return payload

    def get_userinfo(
        self, access_token: str, id_token: str, payload: dict[str, Any]
    ) -> dict[str, Any]:
        return payload

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        return bool(claims.get("sub"))

    def get_or_create_user(self, access_token: str, id_token: str, payload: dict[str, Any]) -> User:
        return claim_rules.user_for(payload)

    def store_tokens(self, access_token: str, id_token: str) -> None:
        # For the provider's sign-out (id_token_hint); the access token is not kept.
        self.request.session[ID_TOKEN] = id_token


class SignInView(OIDCAuthenticationRequestView):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.OIDC_RP_CLIENT_ID = settings.OIDC_CLIENT_ID

    def get(self, request: HttpRequest) -> HttpResponseBase:
        if not settings.OIDC_ENABLED:
            raise Http404
        try:
            self.OIDC_OP_AUTH_ENDPOINT = provider.document()["authorization_endpoint"]
        except (requests.RequestException, ValueError) as exc:
            log.warning("OpenID Connect provider unavailable: %r", exc)
            return HttpResponseRedirect(failure_url())
        response: HttpResponseBase = super().get(request)
        return response


class CallbackView(OIDCAuthenticationCallbackView):
    def get(self, request: HttpRequest) -> HttpResponseBase:
        if not settings.OIDC_ENABLED:
            raise Http404
        response: HttpResponseBase = super().get(request)
        return response

    @property
    def failure_url(self) -> str:
        return failure_url()


def failure_url() -> str:
    return f"{reverse('login')}?{urlencode({'sign_in': 'failed'})}"


class SignOutView(LogoutView):
    """Django's logout, then the provider's end-session endpoint when the user signed in there
    and the provider has one, so the provider's session ends too."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        id_token = request.session.get(ID_TOKEN)
        response = super().post(request, *args, **kwargs)
        if not (id_token and settings.OIDC_ENABLED and isinstance(response, HttpResponseRedirect)):
            return response
        try:
            end_session = provider.document().get("end_session_endpoint")
        except (requests.RequestException, ValueError):
            end_session = None
        if not end_session:
            return response
        back = request.build_absolute_uri(response.url)
        query = urlencode({"id_token_hint": id_token, "post_logout_redirect_uri": back})
        return HttpResponseRedirect(f"{end_session}?{query}")


def sign_in_context(request: HttpRequest) -> dict[str, str]:
    """For the login page: the provider's button, when one is configured."""
    if not settings.OIDC_ENABLED:
        return {}
    next_url = request.GET.get(REDIRECT_FIELD_NAME, "")
    url = reverse("accounts:oidc_sign_in")
    if next_url:
        url += "?" + urlencode({REDIRECT_FIELD_NAME: next_url})
    return {"oidc_provider_name": settings.OIDC_PROVIDER_NAME, "oidc_sign_in_url": url}
