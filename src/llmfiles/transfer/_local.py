"""Checks and errors about local files, shared by the async and the legacy arm."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from stat import S_ISREG

from llmfiles._errors import ConfigError, FileTooLargeError
from llmfiles.providers import ProviderSpec


def check_upload(spec: ProviderSpec, path: Path, purpose: str, stat: os.stat_result) -> int:
    """The file's size, after checking purpose and size against the provider's limits.

    Shared with the legacy arm so both refuse the same files with the same errors, before a byte is sent.

    Raises:
        UnsupportedPurposeError: the provider does not know `purpose`.
        ConfigError: `path` is not a regular file, or its name is not valid UTF-8.
        FileTooLargeError: the file exceeds the purpose's limit.
    """
    limit = spec.limit_for(purpose)
    check_name(path)
    if not S_ISREG(stat.st_mode):
        raise ConfigError(f"path={str(path)!r} is not a regular file; pass a file, not a directory")
    if stat.st_size > limit.max_bytes:
        raise FileTooLargeError(
            f"path={str(path)!r} has {stat.st_size} bytes but {spec.name} accepts at most {limit.max_bytes} "
            f"for purpose={purpose!r}; split or compress it"
        )
    return stat.st_size


def check_name(path: Path) -> None:
    """Refuse a file whose name cannot be sent: the multipart part announces it as UTF-8.

    On POSIX a name is bytes, and one that is not UTF-8 (``caf\\xe9.txt`` from a Latin-1 system) reaches
    Python with lone surrogates in it (``surrogateescape``). Left alone, the request builder fails with
    a bare `UnicodeEncodeError`; checked here, the caller gets a `ConfigError` before any request.

    Raises:
        ConfigError: the name is not valid UTF-8.
    """
    try:
        path.name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ConfigError(
            f"path={str(path)!r}: its name is not valid UTF-8 (the upload announces the name as UTF-8); "
            "rename the file, or upload a copy under a UTF-8 name. Nothing was sent"
        ) from exc


def unreadable(path: Path, exc: OSError) -> ConfigError:
    """The error for a local file that cannot be opened or read."""
    return ConfigError(f"path={str(path)!r} cannot be read ({exc.strerror}); check it exists and is readable")


def unwritable(directory: str | os.PathLike[str], exc: OSError) -> ConfigError:
    """The error for a destination directory that cannot take the download."""
    return ConfigError(
        f"dest_dir={os.fspath(directory)!r} cannot be written ({exc.strerror or exc}); "
        "choose a writable directory with free space"
    )


def file_sha256(path: Path, chunk_size: int) -> str:
    """Hex SHA-256 of a file, read in chunks (blocking: run it in a worker thread)."""
    hasher = hashlib.sha256()
    try:
        with path.open("rb") as source:
            while chunk := source.read(chunk_size):
                hasher.update(chunk)
    except OSError as exc:
        raise unreadable(path, exc) from exc
    return hasher.hexdigest()
