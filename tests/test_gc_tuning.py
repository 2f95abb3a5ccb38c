"""GC_TUNING (ragsite/gc_tuning.py): a server process freezes its start-up objects out of the
garbage collector and makes collections rarer; GC_TUNING=false keeps Python's defaults."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROBE = (
    "import gc, json; defaults = gc.get_threshold(); import ragsite.asgi; "
    "print(json.dumps([defaults, gc.get_threshold(), gc.get_freeze_count()]))"
)


def _load_asgi(tmp_path, tuning: str | None):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "ragsite.settings"}
    env["RAGSITE_DATA_DIR"] = str(tmp_path)
    env.pop("GC_TUNING", None)
    if tuning is not None:
        env["GC_TUNING"] = tuning
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_server_freezes_start_up_objects_and_makes_full_collections_rare(tmp_path):
    defaults, threshold, frozen = _load_asgi(tmp_path, None)
    assert threshold[0] == 10_000 > defaults[0]  # young collections less often
    assert threshold[1] == defaults[1]
    assert threshold[2] == 1000 > defaults[2]
    assert frozen > 50_000  # Django, the SDKs, the app: out of every full collection


@pytest.mark.parametrize("value", ["false", "off"])
def test_gc_tuning_off_keeps_pythons_defaults(tmp_path, value):
    defaults, threshold, frozen = _load_asgi(tmp_path, value)
    assert threshold == defaults and frozen < 5_000
