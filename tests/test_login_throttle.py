"""Password guessing against a real uvicorn: concurrent guesses and look-alike usernames do not get
past LOGIN_MAX_FAILURES.

The server runs as in production with its own database; the throttle's counts live in Redis
when the caller's REDIS_URL is set (the scale-out pass), in memory otherwise. Each test's
client connects from its own loopback address (127.0.0.x), so the per-address count of one
test does not decide another.
"""

import http.client
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import pytest

from tests.test_body_limits import server_env, start_uvicorn, stop

MAX_FAILURES = 3
PASSWORD = "correct-horse-battery-1"
USERS = ("victim1", "guess1", "guess2", "guess3", "bystander")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("login-throttle")
    env = server_env(
        data_dir, LOGIN_MAX_FAILURES=str(MAX_FAILURES), LOGIN_FAILURE_WINDOW_SECONDS="900"
    )
    if os.environ.get("REDIS_URL"):
        env["REDIS_URL"] = os.environ["REDIS_URL"]
        from limits.storage import RedisStorage

        RedisStorage(env["REDIS_URL"]).reset()  # counts from earlier runs
    # Hashes of few iterations keep each wrong guess cheap (a verification uses the iterations
    # stored in the hash); the throttle does not depend on the hash's cost.
    create_users = (
        "from django.contrib.auth.hashers import PBKDF2PasswordHasher as H\n"
        "from django.contrib.auth.models import User\n"
        f"for name in {USERS!r}:\n"
        f"    hashed = H().encode({PASSWORD!r}, H().salt(), 1000)\n"
        "    User.objects.create(username=name, password=hashed, is_staff=True)"
    )
    process, port = start_uvicorn(env, data_dir / "uvicorn.log", setup=create_users)
    try:
        yield port
    finally:
        stop(process)


class Client:
    """A browser at one loopback address: fetches the login form once, then posts to it."""

    def __init__(self, port: int, address: str, path: str = "/accounts/login/"):
        self.port, self.address, self.path = port, address, path
        status, headers, body = self._request("GET", path)
        assert status == 200, body
        self.cookie = re.search(r"csrftoken=([^;]+)", headers["set-cookie"]).group(1)
        self.token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body).group(1)

    def _request(self, method: str, path: str, body: bytes | None = None, headers=None):
        conn = http.client.HTTPConnection(
            "127.0.0.1", self.port, timeout=60, source_address=(self.address, 0)
        )
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def login(self, username: str, password: str) -> int:
        form = {"username": username, "password": password, "csrfmiddlewaretoken": self.token}
        status, _, _ = self._request(
            "POST",
            self.path,
            body=urlencode(form).encode(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": f"csrftoken={self.cookie}",
            },
        )
        return status


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_concurrent_guesses_are_checked_at_most_max_failures_times(server, path):
    address, username = {
        "/accounts/login/": ("127.0.0.2", "guess1"),
        "/admin/login/": ("127.0.0.3", "guess2"),
    }[path]
    client = Client(server, address, path)
    together = threading.Barrier(20)

    def guess(i: int) -> int:
        together.wait()
        return client.login(username, f"no-{i}")

    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(guess, range(20)))
    assert statuses.count(200) <= MAX_FAILURES  # 200: the form came back, the password was checked
    assert statuses.count(429) >= 20 - MAX_FAILURES


def test_a_locked_account_stays_locked_under_every_spelling_of_its_name(server):
    attacker = Client(server, "127.0.0.4")
    for i in range(MAX_FAILURES):
        assert attacker.login("victim1", f"wrong-{i}") == 200
    elsewhere = Client(server, "127.0.0.5")
    # Full-width v, upper case, padding: the login form makes each of these "victim1" or
    # another account; none may log in as victim1 while it is locked.
    for spelling in ("victim1", "ｖictim1", "VICTIM1", " victim1 ", "ｖｉｃｔｉｍ１"):
        assert elsewhere.login(spelling, PASSWORD) == 429, spelling
    # Neither those refused attempts nor a successful login use up the address's allowance.
    assert elsewhere.login("bystander", PASSWORD) == 302
    for i in range(MAX_FAILURES):
        assert elsewhere.login("guess3", f"wrong-{i}") == 200
