"""The production start the README documents: configuration from `.env`, every variable in
`.env.example`, static files collected, hashed and compressed, and a serve command that neither
installs development tools nor migrates."""

import re
import subprocess
import sys
import urllib.request

import pytest

from tests.test_body_limits import server_env, start_uvicorn
from tests.uvicorn_server import ROOT, stop

SETTINGS_FILES = (
    "ragsite/settings.py",
    "ragsite/config.py",
    "ragsite/env_file.py",
    "core/telemetry.py",
)
READ = re.compile(
    r"(?:cfg|self|self\.env|os\.environ)\.(?:str|bool|int|float|list|path|choice|rate|_read|get)"
    r"\(\s*\"([A-Z][A-Z0-9_]+)\""
)


pytestmark = pytest.mark.own_configuration


def _variables_read() -> set[str]:
    return {name for f in SETTINGS_FILES for name in READ.findall((ROOT / f).read_text())}


def test_env_example_lists_every_variable_and_no_other():
    documented = set(
        re.findall(r"^# ([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M)
    )
    read = _variables_read()
    assert read - documented == set(), "read by the settings, missing from .env.example"
    assert documented - read == set(), ".env.example names what nothing reads"
    readme = (ROOT / "README.md").read_text()
    assert {name for name in read if f"`{name}`" not in readme} == set()


def _setting(env: dict, name: str) -> str:
    code = f"from django.conf import settings; print(settings.{name})"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_env_file_is_read_and_the_environment_wins(tmp_path):
    env_file = tmp_path / "prod.env"
    env_file.write_text("CHAT_DEFAULT_TOP=7\nCHAT_MAX_MESSAGES=9\n")
    env = server_env(tmp_path)
    env["RAGSITE_ENV_FILE"] = str(env_file)
    assert _setting(env, "CHAT_DEFAULT_TOP") == "7"
    env["CHAT_DEFAULT_TOP"] = "3"
    assert _setting(env, "CHAT_DEFAULT_TOP") == "3"
    assert _setting(env, "CHAT_MAX_MESSAGES") == "9"
    env_file.write_text("CHAT_DEFAULT_TOP=zero\n")
    del env["CHAT_DEFAULT_TOP"]
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0 and "CHAT_DEFAULT_TOP" in result.stderr


def test_make_serve_neither_installs_dev_tools_nor_migrates():
    plan = subprocess.run(
        ["make", "-n", "serve"], cwd=ROOT, capture_output=True, text=True, timeout=60
    ).stdout
    assert "gunicorn" in plan and "collectstatic" in plan
    assert "migrate" not in plan
    assert "requirements-dev" not in plan and "requirements-bench" not in plan


@pytest.fixture
def collected_server(tmp_path):
    env = server_env(tmp_path)
    env["DJANGO_STATIC_COLLECTED"] = "true"
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
    )
    process, port = start_uvicorn(env, tmp_path / "server.log")
    yield f"http://127.0.0.1:{port}"
    stop(process)


def test_collected_static_files_are_hashed_compressed_and_cached(collected_server):
    page = urllib.request.urlopen(collected_server + "/", timeout=30).read().decode()
    hashed = re.findall(r'(/static/[\w/.-]+\.[0-9a-f]{12}\.(?:css|js))"', page)
    assert hashed, "the page links no hashed static file"
    request = urllib.request.Request(collected_server + hashed[0])
    request.add_header("Accept-Encoding", "gzip")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        assert response.headers["Content-Encoding"] == "gzip"
        max_age = re.search(r"max-age=(\d+)", response.headers["Cache-Control"])
        assert max_age and int(max_age.group(1)) >= 86400 * 30
