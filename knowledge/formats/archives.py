"""Checks on zip-based Office files (DOCX, PPTX, XLSX) before any parser opens them.

The parsers read members through `zipfile`, which never inflates a member past the size its
header declares, so the declared sizes bound what parsing can unpack: a zip bomb is refused
from its central directory alone.
"""

import io
import zipfile

from knowledge.formats.errors import ExtractionError

# Office itself never writes more than a few thousand parts; a million tiny ones is an attack.
MAX_MEMBERS = 20_000
# Password-protected Office files (and the old .doc/.ppt/.xls) are OLE compound files, not zips.
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def check_archive(data: bytes, *, kind: str, what: str, required: str, max_unpacked: int) -> None:
    """Refuse `data` unless it is a zip holding `required` that unpacks to at most
    `max_unpacked` bytes. `kind` is the extension's name ("PPTX"), `what` the document's."""
    if data.startswith(_OLE_MAGIC):
        raise ExtractionError(
            f"The {kind} file is password-protected or in an older Office format. Remove the "
            f"password, or save it as {kind} again, and upload that."
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError) as exc:
        raise ExtractionError(f"The {kind} file is damaged or not a {kind} file.") from exc
    if required not in {member.filename for member in members}:
        raise ExtractionError(f"This is not {what} (no {required} inside).")
    if len(members) > MAX_MEMBERS:
        raise ExtractionError(
            f"The {kind} file holds {len(members):,} parts; at most {MAX_MEMBERS:,} are allowed."
        )
    unpacked = sum(member.file_size for member in members)
    if unpacked > max_unpacked:
        raise ExtractionError(
            f"The {kind} file would unpack to {unpacked / 1048576:.0f} MB, which is more than "
            f"the {max_unpacked / 1048576:.0f} MB allowed."
        )
