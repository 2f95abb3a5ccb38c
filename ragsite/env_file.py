"""`.env` for the processes a deployment starts (manage.py commands, the ASGI app).

Variables already in the environment win over the file. `RAGSITE_ENV_FILE` names another file,
or none when empty; the test suite sets it empty so a developer's `.env` never reaches the
servers and commands the tests start.
"""

import os
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent


def load() -> Path | None:
    named = os.environ.get("RAGSITE_ENV_FILE")
    path = BASE_DIR / ".env" if named is None else (Path(named) if named else None)
    if path is None or not path.is_file():
        return None
    environ.Env.read_env(path, overwrite=False)
    return path
