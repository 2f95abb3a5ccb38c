"""Uploaded originals in Azure Blob Storage: django-storages' Azure backend, keyless by default.

Selected in settings when AZURE_STORAGE_ACCOUNT_URL or AZURE_STORAGE_CONNECTION_STRING is set
(`ragsite.config.Config.originals_storage`); every web host and worker then reads the same
originals, where local disk keeps each on the host that took the upload.
"""

from typing import TYPE_CHECKING

from django.conf import settings
from storages.backends.azure_storage import AzureStorage

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential


class KeylessAzureStorage(AzureStorage):
    """With an account URL and no key: azure-identity's credential (a managed identity in Azure,
    the developer's sign-in elsewhere), made on first use rather than at import."""

    token_credential: "TokenCredential | None"  # set from settings by django-storages

    def _get_service_client(self):
        if not (self.connection_string or self.account_key or self.sas_token):
            if self.token_credential is None:
                from azure.identity import DefaultAzureCredential

                self.token_credential = DefaultAzureCredential(
                    managed_identity_client_id=settings.AZURE_CLIENT_ID or None
                )
        return super()._get_service_client()
