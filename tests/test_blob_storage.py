"""Originals in Azure Blob Storage (django-storages), against Azurite over real HTTP: an upload
lands in the container, not on local disk, and the access-checked original view streams it back;
the settings pick the backend from the environment and name the variable when it is wrong."""

import pytest
from azure.storage.blob import BlobServiceClient
from django.core.exceptions import ImproperlyConfigured
from django.core.files.uploadedfile import SimpleUploadedFile

from knowledge.models import Document
from ragsite.config import Config
from tests.admin_forms import add_document
from tests.asgi_client import Client
from tests.azurite import azurite  # noqa: F401  (fixture)
from tests.files import pdf_bytes

CONTAINER = "originals"


@pytest.fixture
def blob_originals(azurite, settings):  # noqa: F811
    service = BlobServiceClient.from_connection_string(azurite)
    service.create_container(CONTAINER)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "knowledge.blob_storage.KeylessAzureStorage",
            "OPTIONS": {"connection_string": azurite, "azure_container": CONTAINER},
        },
    }
    yield service.get_container_client(CONTAINER)
    service.close()


@pytest.mark.django_db(transaction=True)
def test_an_upload_is_kept_in_blob_storage_and_served_from_there(
    blob_originals, staff_user, settings, django_user_model
):
    data = pdf_bytes(["The shuttle leaves at 07:45."], "Shuttle")
    staff = Client()
    staff.force_login(staff_user)
    response = add_document(staff, title="Shuttle", file=SimpleUploadedFile("shuttle.pdf", data))
    assert response.status_code == 302
    doc = Document.objects.get()
    blobs = [blob.name for blob in blob_originals.list_blobs()]
    assert blobs == [doc.file.name] and doc.file.name.endswith("shuttle.pdf")
    assert blob_originals.download_blob(doc.file.name).readall() == data
    local = list(settings.MEDIA_ROOT.rglob("*")) if settings.MEDIA_ROOT.exists() else []
    assert not [path for path in local if path.is_file()]  # nothing on this host's disk
    original = Client().get(f"/source/{doc.pk}/original")  # public: anyone may read it
    assert original.status_code == 200 and original["Content-Type"] == "application/pdf"
    assert original.content == data
    doc.published = False
    doc.save()
    assert Client().get(f"/source/{doc.pk}/original").status_code == 404


def _config(monkeypatch, **env) -> dict:
    for name in ("AZURE_STORAGE_ACCOUNT_URL", "AZURE_STORAGE_CONNECTION_STRING",
                 "AZURE_STORAGE_CONTAINER"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Config(None).originals_storage()


def test_local_disk_is_the_default(monkeypatch):
    assert _config(monkeypatch) == {"BACKEND": "django.core.files.storage.FileSystemStorage"}


def test_an_account_url_alone_is_keyless_blob_storage(monkeypatch):
    storage = _config(
        monkeypatch,
        AZURE_STORAGE_ACCOUNT_URL="https://ragsitedocs.blob.core.windows.net/",
        AZURE_STORAGE_CONTAINER="kb-originals",
    )
    assert storage["BACKEND"] == "knowledge.blob_storage.KeylessAzureStorage"
    assert storage["OPTIONS"] == {
        "azure_container": "kb-originals",
        "overwrite_files": False,
        "account_name": "ragsitedocs",
        "endpoint_suffix": "core.windows.net",
        "azure_ssl": True,
    }
    from azure.identity import DefaultAzureCredential

    from knowledge.blob_storage import KeylessAzureStorage

    client = KeylessAzureStorage(**storage["OPTIONS"]).service_client  # no request is sent
    assert client.url.startswith("https://ragsitedocs.blob.core.windows.net")
    assert isinstance(client.credential, DefaultAzureCredential)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        (
            {"AZURE_STORAGE_ACCOUNT_URL": "https://a.blob.core.windows.net",
             "AZURE_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true"},
            "AZURE_STORAGE_ACCOUNT_URL",
        ),
        ({"AZURE_STORAGE_ACCOUNT_URL": "https://example.com/x"}, "AZURE_STORAGE_ACCOUNT_URL"),
        (
            {"AZURE_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true",
             "AZURE_STORAGE_CONTAINER": "Bad_Name"},
            "AZURE_STORAGE_CONTAINER",
        ),
    ],
)  # fmt: skip
def test_a_wrong_storage_setting_names_its_variable(monkeypatch, env, variable):
    with pytest.raises(ImproperlyConfigured, match=f"Environment variable {variable}"):
        _config(monkeypatch, **env)
