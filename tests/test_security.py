"""Security settings that hold on every page: CSP without inline script, deploy checks, login
brute force slowed down."""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.asgi_client import Client

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/", "/accounts/login/", "/admin/login/"])
def test_every_page_has_a_strict_csp_and_no_inline_script(client, path):
    response = client.get(path)
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    html = response.content.decode()
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag or 'type="application/json"' in tag, tag
    assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler"


def test_admin_pages_work_under_the_csp(admin_client):
    for path in ("/admin/", "/admin/knowledge/document/", "/admin/knowledge/document/add/"):
        response = admin_client.get(path)
        assert response.status_code == 200
        assert "script-src 'self'" in response["Content-Security-Policy"]


def test_check_deploy_is_clean_with_production_settings():
    env = {
        **os.environ,
        "DJANGO_HTTPS": "true",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "DJANGO_ALLOWED_HOSTS": "chat.example.com",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_login_brute_force_is_slowed(path, django_user_model, settings):
    from core import login_throttle

    login_throttle._limiter = None
    login_throttle.limiter().storage.reset()  # Redis keeps counts across tests
    settings.LOGIN_MAX_FAILURES = 3
    django_user_model.objects.create_user("victim", password="right-password-1", is_staff=True)
    client = Client()
    for _ in range(3):
        response = client.post(path, {"username": "victim", "password": "wrong"})
        assert response.status_code == 200
    refused = client.post(path, {"username": "victim", "password": "right-password-1"})
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    # another account from another address is not affected
    other = Client(REMOTE_ADDR="10.9.9.9")
    django_user_model.objects.create_user("other", password="other-password-1", is_staff=True)
    assert (
        other.post(path, {"username": "other", "password": "other-password-1"}).status_code == 302
    )
