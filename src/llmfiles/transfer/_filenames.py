"""Safe filenames: the sanitiser, the Content-Disposition parser and the join that never escapes.

All three are pure functions (no file system access apart from making `safe_join`'s directory absolute),
so they are cheap enough to run on every download and easy to test with Hypothesis.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path
from urllib.parse import unquote

from llmfiles._errors import ConfigError, UnsafeFilenameError

MAX_NAME_BYTES = 255
"""The usual per-component limit (ext4, APFS, NTFS in UTF-16 units is looser): 255 bytes of UTF-8."""

_MAX_EXTENSION_BYTES = 32
"""An "extension" longer than this is part of the name, not something worth keeping whole."""

# Categories removed outright: controls (NUL, DEL, C1), format characters (bidi overrides and isolates,
# zero-width space/joiners, BOM), surrogates (not encodable), private use, unassigned, line/paragraph
# separators. None of them belongs in a name a person should read.
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})

# Separators of every platform and the characters Windows refuses; ':' also names NTFS streams.
_REPLACED = str.maketrans(dict.fromkeys('/\\:<>"|?*', "_"))

_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"COM{i}" for i in range(1, 10)}
    | {f"LPT{i}" for i in range(1, 10)}
)

# A sanitised name is a fixed point of `_sanitize_once`; removing a character can make the neighbours
# compose differently under NFKC, so one pass is not always enough. Three passes reach the fixed point for
# every input Hypothesis has found; the bound only guards against a Unicode surprise looping forever.
_MAX_PASSES = 8


def sanitize_filename(name: str, *, default: str = "download") -> str:
    """Turn an untrusted name (a header, provider metadata, a user) into one safe to create in a directory.

    The rules, applied in this order until the name no longer changes:

    1. Unicode NFKC normalisation first, so full-width and other compatibility forms of ``.``, ``/``
       and ``\\`` become the ASCII characters the later rules catch (full-width U+FF0E U+FF0E U+FF0F
       cannot form ``../``).
    2. Control characters (NUL included), format characters (bidi overrides, zero-width characters,
       BOM), surrogates, private-use and unassigned code points, line and paragraph separators: removed.
    3. Path separators of every platform (``/``, ``\\``) and the characters Windows refuses
       (``: < > " | ? *``): each replaced by ``_``.
    4. Leading and trailing dots and spaces: removed. This drops ``.`` and ``..``, hidden-file names
       and the trailing dots or spaces Windows silently strips.
    5. Windows reserved device names (CON, PRN, AUX, NUL, COM1-COM9, LPT1-LPT9, CONIN$, CONOUT$), in any
       case and also with an extension (``nul.txt``): prefixed with ``_``.
    6. At most 255 bytes of UTF-8, cut on a character boundary; the extension (the part after the last
       dot, up to 32 bytes) is kept and the stem shortened instead.
    7. Nothing left: `default`.

    Args:
        name: the untrusted name; any string.
        default: returned when nothing safe remains; must itself already be a sanitised name.

    Returns:
        A name with no separator, never ``.`` or ``..``, at most 255 UTF-8 bytes, and a fixed point of
        this function (sanitising it again changes nothing).

    Raises:
        TypeError: `name` is not a string.
        ConfigError: `default` is not itself a safe name.
    """
    if not isinstance(name, str):
        raise TypeError(f"name={name!r} must be a str")
    if not default or _sanitize(default) != default:
        raise ConfigError(f"default={default!r} is not a safe filename; pick a plain name such as 'download'")
    return _sanitize(name) or default


def _sanitize(name: str) -> str:
    for _ in range(_MAX_PASSES):
        cleaned = _sanitize_once(name)
        if cleaned == name:
            return cleaned
        name = cleaned
    return name


def _sanitize_once(name: str) -> str:
    name = unicodedata.normalize("NFKC", name)
    name = "".join(ch for ch in name if unicodedata.category(ch) not in _DROPPED_CATEGORIES)
    name = name.translate(_REPLACED).strip(" .")
    if name.split(".", 1)[0].rstrip(" ").upper() in _WINDOWS_RESERVED:
        name = "_" + name
    return _truncate(name)


def _truncate(name: str) -> str:
    encoded = name.encode("utf-8")
    if len(encoded) <= MAX_NAME_BYTES:
        return name
    stem, dot, extension = name.rpartition(".")
    suffix = f".{extension}".encode()
    if not (dot and stem and len(suffix) <= _MAX_EXTENSION_BYTES):
        stem, suffix = name, b""
    budget = MAX_NAME_BYTES - len(suffix)
    # errors="ignore" drops a multi-byte character the cut went through, never anything whole.
    short_stem = stem.encode("utf-8")[:budget].decode("utf-8", errors="ignore").rstrip(" .")
    return short_stem + suffix.decode("utf-8")


_TCHARS = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_DISPOSITION_TYPE = re.compile(rf"\s*({_TCHARS})\s*")
_PARAMETER = re.compile(rf';\s*({_TCHARS})\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s"]*)\s*')
_QUOTED_PAIR = re.compile(r"\\(.)")
_EXT_VALUE = re.compile(r"([!#$%&+^_`{}~0-9A-Za-z-]+)'[^']*'(.*)", re.DOTALL)


def parse_content_disposition(header: str) -> str | None:
    """The filename a ``Content-Disposition`` header proposes, unsanitised, or None when it names none.

    Follows RFC 6266: ``filename*`` (RFC 5987 ``charset'language'percent-encoded``, UTF-8 or ISO-8859-1)
    wins over ``filename`` whatever their order; quoted strings are unescaped. Parsing stops at the
    first malformed parameter and keeps what came before it, as browsers do. The result is whatever the
    server said, so it must still go through `sanitize_filename`.

    Hand-written because the standard library's ``email`` parser follows mail rules (RFC 2231
    continuations, order-dependent precedence) rather than RFC 6266, and no maintained small library
    does only this.
    """
    head = _DISPOSITION_TYPE.match(header)
    if head is None:
        return None
    plain: str | None = None
    extended: str | None = None
    position = head.end()
    while position < len(header):
        match = _PARAMETER.match(header, position)
        if match is None:
            break
        position = match.end()
        key, raw = match.group(1).lower(), match.group(2)
        value = _QUOTED_PAIR.sub(r"\1", raw[1:-1]) if raw.startswith('"') else raw
        if key == "filename*" and extended is None:
            extended = _decode_ext_value(value)
        elif key == "filename" and plain is None:
            plain = value
    name = extended if extended else plain
    return name or None


def _decode_ext_value(value: str) -> str | None:
    match = _EXT_VALUE.fullmatch(value)
    if match is None:
        return None
    charset = match.group(1).lower()
    if charset not in {"utf-8", "iso-8859-1"}:
        return None
    try:
        return unquote(match.group(2), encoding=charset, errors="strict")
    except UnicodeDecodeError:
        return None


def safe_join(directory: str | os.PathLike[str], name: str) -> Path:
    """``directory / name``, refusing any name that could land anywhere but directly inside `directory`.

    `directory` is made absolute and its own symlinks resolved (the caller chose it); the last component
    is never resolved, so an existing symlink called `name` is not followed here. Sanitise untrusted
    names with `sanitize_filename` first: this function checks, it does not repair.

    Raises:
        UnsafeFilenameError: `name` is empty, ``.`` or ``..``, contains a path separator or NUL, or
            the joined path is not a direct child of `directory`.
    """
    if name in {"", ".", ".."} or any(bad in name for bad in ("/", "\\", "\0", os.sep)):
        raise UnsafeFilenameError(
            f"name={name!r} could escape the target directory; pass it through sanitize_filename first"
        )
    base = Path(os.path.realpath(directory))
    candidate = base / name
    if candidate.parent != base or candidate.name != name:
        raise UnsafeFilenameError(f"name={name!r} does not stay inside directory={str(base)!r}")
    return candidate


def numbered(name: str, number: int) -> str:
    """`name` with `` (number)`` before its extension, still safe and within 255 bytes.

    The stem is shortened first so the counter is never the part that a length cut removes.
    """
    stem, dot, extension = name.rpartition(".")
    suffix = f".{extension}"
    if not (dot and stem and len(suffix.encode()) <= _MAX_EXTENSION_BYTES):
        stem, suffix = name, ""
    counter = f" ({number})"
    budget = MAX_NAME_BYTES - len(counter.encode()) - len(suffix.encode())
    short_stem = stem.encode("utf-8")[:budget].decode("utf-8", errors="ignore")
    return _sanitize(f"{short_stem}{counter}{suffix}")
