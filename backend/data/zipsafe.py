"""Unpack an uploaded zip without trusting it: no absolute paths, no `..`, no links, no zip bombs.

Every entry is checked before one byte is written; sizes are counted while copying too, because
the sizes a zip declares can lie. Junk that archivers add (__MACOSX/, .DS_Store) is skipped.
"""

from __future__ import annotations

import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from backend.data.errors import DataError
from backend.data.options import ImportLimits

JUNK_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}
SMALL_ENTRY = 1024**2  # below this a high compression ratio is harmless (a file of blanks)
CHUNK = 1024**2


def is_junk(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return bool(parts) and (parts[0] == "__MACOSX" or parts[-1] in JUNK_NAMES or parts[-1].startswith("._"))


def safe_extract(archive: Path, target: Path, limits: ImportLimits) -> list[Path]:
    """Extract `archive` into `target` (which must exist); returns the files written, relative to it."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as e:
        raise DataError(f"{archive.name}: not a readable zip file ({e}); zip it again") from None
    with zf:
        members = [m for m in _checked_members(zf, archive.name, limits) if not is_junk(m.filename)]
        written, total = [], 0
        for member in members:
            rel = Path(*PurePosixPath(member.filename.replace("\\", "/")).parts)
            out = target / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            total = _copy(zf, member, out, total, archive.name, limits)
            written.append(rel)
    if not written:
        raise DataError(f"{archive.name}: the zip holds no files")
    return written


def _checked_members(zf: zipfile.ZipFile, name: str, limits: ImportLimits) -> list[zipfile.ZipInfo]:
    try:
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as e:
        raise DataError(f"{name}: not a readable zip file ({e}); zip it again") from None
    if len(infos) > limits.max_zip_entries:
        raise DataError(f"{name}: {len(infos):,} entries, over the limit of {limits.max_zip_entries:,}; split the zip")
    members, declared = [], 0
    for info in infos:
        entry = info.filename
        path = PurePosixPath(entry.replace("\\", "/"))
        if entry.startswith(("/", "\\")) or (len(entry) > 1 and entry[1] == ":") or path.is_absolute():
            raise DataError(
                f"{name}: entry '{entry}' has an absolute path; refusing the zip (re-zip with relative paths)"
            )
        if ".." in path.parts:
            raise DataError(f"{name}: entry '{entry}' points outside the zip with '..'; refusing the zip")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise DataError(f"{name}: entry '{entry}' is a symbolic link; refusing the zip (zip the files themselves)")
        if info.flag_bits & 0x1:
            raise DataError(f"{name}: entry '{entry}' is encrypted; zip it again without a password")
        if info.is_dir():
            continue
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > SMALL_ENTRY and ratio > limits.max_zip_ratio:
            raise DataError(
                f"{name}: entry '{entry}' expands {ratio:,.0f}x (over {limits.max_zip_ratio}x); "
                "this looks like a zip bomb, refusing it"
            )
        declared += info.file_size
        if declared > limits.max_unzipped_bytes:
            raise DataError(
                f"{name}: the files inside add up to more than {limits.max_unzipped_bytes / 1024**2:,.0f} MB "
                "unpacked; refusing it (TUNEBOARD_MAX_UNZIPPED_MB raises the limit)"
            )
        members.append(info)
    return members


def _copy(zf: zipfile.ZipFile, info: zipfile.ZipInfo, out: Path, total: int, name: str, limits: ImportLimits) -> int:
    written = 0
    try:
        with zf.open(info) as src, out.open("wb") as dst:
            while chunk := src.read(CHUNK):
                written += len(chunk)
                total += len(chunk)
                if written > info.file_size or total > limits.max_unzipped_bytes:
                    raise DataError(
                        f"{name}: entry '{info.filename}' unpacks to more than it declares; refusing the zip"
                    )
                dst.write(chunk)
    except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError, zlib.error) as e:
        raise DataError(f"{name}: entry '{info.filename}' cannot be read ({e}); zip it again") from None
    return total
