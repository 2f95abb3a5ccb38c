"""API keys: how a program acts as a user on the chat API."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiKey(models.Model):
    """A named key of one user. Only its prefix (to find it) and a digest of the whole key are
    stored; the key itself is shown once, when it is made (accounts/api_keys.py)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    digest = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never expires.")
    revoked = models.BooleanField(default=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} (rsk_{self.prefix}…)"

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def status(self) -> str:
        if self.revoked:
            return "revoked"
        return "expired" if self.expired else "active"


class GroupMapping(models.Model):
    """A group or app-role claim of the identity provider that puts its holders in a Django
    group. Applied at every sign-in (and to every bearer token): unmapped claims are ignored,
    and a mapped group whose claim is gone is removed (accounts/claims.py)."""

    claim = models.CharField(
        max_length=200,
        unique=True,
        help_text="As the token carries it: an Entra group's object id, or an app role's value.",
    )
    group = models.ForeignKey("auth.Group", on_delete=models.CASCADE, related_name="mappings")

    class Meta:
        verbose_name = "group mapping"
        ordering = ["claim"]

    def __str__(self) -> str:
        return f"{self.claim} → {self.group}"


class ExternalIdentity(models.Model):
    """Which user an identity provider's subject (issuer and `sub`) signs in as. A provider's
    user is never matched to a local account by name or e-mail."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="external_identity"
    )
    issuer = models.CharField(max_length=300)
    subject = models.CharField(max_length=300)
    last_sign_in = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "external identities"
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="one_user_per_subject")
        ]

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"


class SocketTicket(models.Model):
    """A one-use pass for a browser's websocket handshake, bought with a bearer credential over
    HTTP (accounts/tickets.py). Only a digest of the ticket is stored, and the credential only
    encrypted with a key derived from the ticket: the row alone opens nothing."""

    digest = models.CharField(max_length=64, unique=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="socket_tickets"
    )
    sealed = models.TextField(editable=False)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"socket ticket of {self.user_id} until {self.expires_at:%H:%M:%S}"
