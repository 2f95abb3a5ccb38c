"""Environment the whole suite runs in, set before pytest-django loads the settings (pyproject's
addopts load this module with -p), so the servers and commands the tests start inherit it too.

EMBEDDINGS=none: the zero-configuration default embeds every chunk and question with the offline
model, a few hundred milliseconds of CPU per chunk that tests about anything else should not pay.
The tests about embeddings turn them on themselves (tests/test_local_embeddings.py,
tests/test_embeddings.py), and tests/test_chunking_and_settings.py checks the default itself.
"""

import os

os.environ["EMBEDDINGS"] = "none"
