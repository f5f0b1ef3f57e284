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

# Default-ignorable code points (Unicode's DerivedCoreProperties) that are not format characters: combining
# grapheme joiner, Hangul fillers, Khmer inherent vowels, Mongolian and other variation selectors. They
# render as nothing, so a name of only these would look empty; NFKC maps U+3164 and U+FFA0 to U+1160.
_DEFAULT_IGNORABLE = frozenset(
    chr(code)
    for first, last in (
        (0x034F, 0x034F),
        (0x115F, 0x1160),
        (0x17B4, 0x17B5),
        (0x180B, 0x180F),
        (0x3164, 0x3164),
        (0xFE00, 0xFE0F),
        (0xFFA0, 0xFFA0),
        (0xE0100, 0xE01EF),
    )
    for code in range(first, last + 1)
)

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
       BOM), the other default-ignorable code points (combining grapheme joiner, Hangul fillers,
       variation selectors: U+034F, U+115F-U+1160, U+17B4-U+17B5, U+180B-U+180F, U+3164, U+FE00-U+FE0F,
       U+FFA0, U+E0100-U+E01EF), surrogates, private-use and unassigned code points, line and paragraph
       separators: removed, so no name comes out invisible.
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
    name = "".join(
        ch
        for ch in name
        if unicodedata.category(ch) not in _DROPPED_CATEGORIES and ch not in _DEFAULT_IGNORABLE
    )
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
# RFC 9110 quoted-string: qdtext is anything but DQUOTE, backslash and controls other than HTAB (obs-text,
# i.e. non-ASCII, included); a quoted-pair escapes one such character.
_QUOTED = r'"(?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[^\x00-\x08\x0a-\x1f\x7f])*"'
_DISPOSITION_TYPE = re.compile(rf"[ \t]*({_TCHARS})[ \t]*")
# One parameter: it counts only when ";" or the end of the header follows its value.
_PARAMETER = re.compile(rf";[ \t]*({_TCHARS})[ \t]*=[ \t]*({_TCHARS}|{_QUOTED})[ \t]*")
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)
# RFC 5987 ext-value: charset "'" [ language ] "'" value-chars, value-chars only attr-char or %XX.
_EXT_VALUE = re.compile(
    r"([!#$%&+^_`{}~0-9A-Za-z-]+)'([0-9A-Za-z-]*)'((?:%[0-9A-Fa-f]{2}|[!#$&+.^_`|~0-9A-Za-z-])*)"
)
_C1_CONTROLS = re.compile("[\x80-\x9f]")


def parse_content_disposition(header: str) -> str | None:
    """The filename a ``Content-Disposition`` header proposes, unsanitised, or None when it names none.

    Strict RFC 6266, as Julian Reschke's tc2231 test cases judge it (the test table holds them):

    - the header is ``type *(";" param)``; anything that does not parse (a quoted type, a missing type or
      ``;``, a value not followed by ``;`` or the end such as ``filename=foo bar.html`` or
      ``filename="foo.html".txt``, a trailing ``;``) makes the whole header name nothing;
    - an unquoted value holds token characters only; a quoted one is unescaped;
    - ``filename`` or ``filename*`` given twice makes the header invalid (RFC 6266 §4.1): no name;
    - ``filename*`` (RFC 5987 ``charset'language'value``, UTF-8 or ISO-8859-1, unquoted) wins over
      ``filename`` whatever their order; one with malformed percent escapes, bytes invalid in its charset
      or another charset is ignored and ``filename`` is used;
    - RFC 2231 continuations (``filename*0``) are not part of HTTP (RFC 6266 §4.3) and are ignored.

    The result is whatever the server said, so it must still go through `sanitize_filename`.

    Hand-written because the standard library's ``email`` parser follows mail rules (RFC 2231
    continuations, lenient recovery, order-dependent precedence) rather than RFC 6266, and no maintained
    small library does only this.
    """
    head = _DISPOSITION_TYPE.match(header)
    if head is None:
        return None
    values: dict[str, list[str]] = {"filename": [], "filename*": []}
    position = head.end()
    while position < len(header):
        match = _PARAMETER.match(header, position)
        if match is None:
            return None
        position = match.end()
        key, raw = match.group(1).lower(), match.group(2)
        if key in values:
            values[key].append(raw)
    plain, extended = values["filename"], values["filename*"]
    if len(plain) > 1 or len(extended) > 1:
        return None
    name = _decode_ext_value(extended[0]) if extended else None
    if not name and plain:
        raw = plain[0]
        name = _QUOTED_PAIR.sub(r"\1", raw[1:-1]) if raw.startswith('"') else raw
    return name or None


def _decode_ext_value(value: str) -> str | None:
    match = _EXT_VALUE.fullmatch(value)  # a quoted value never matches: an ext-value is not quoted
    if match is None:
        return None
    charset = match.group(1).lower()
    if charset not in {"utf-8", "iso-8859-1"}:
        return None
    try:
        decoded = unquote(match.group(3), encoding=charset, errors="strict")
    except UnicodeDecodeError:
        return None
    if charset == "iso-8859-1" and _C1_CONTROLS.search(decoded):
        return None  # 0x80-0x9F are no ISO-8859-1 characters: most likely UTF-8 declared wrongly
    return decoded


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
