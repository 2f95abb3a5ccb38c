"""Settings of the sync baseline: ragsite's own settings, with the baseline's URLconf."""

from ragsite.settings import *  # noqa: F403

ROOT_URLCONF = "bench.sync_app"
