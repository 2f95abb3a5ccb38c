"""What a bearer credential resolves to, or why it does not."""

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import User

from knowledge.access import AccessFilter

INVALID = "The credential is invalid, expired or revoked."


class InvalidCredential(Exception):
    """A credential was sent and is not good: 401, never anonymous access."""

    def __init__(self, description: str = INVALID):
        super().__init__(description)
        self.description = description

    @property
    def www_authenticate(self) -> str:
        return f'Bearer error="invalid_token", error_description="{self.description}"'


@dataclass(frozen=True, slots=True)
class Identity:
    user: User
    access: AccessFilter
    key_id: int | None  # None: a provider's token
    expires_at: datetime | None
