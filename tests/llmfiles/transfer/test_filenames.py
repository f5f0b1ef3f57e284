import os
import unicodedata
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmfiles import ConfigError, UnsafeFilenameError
from llmfiles.transfer import parse_content_disposition, safe_join, sanitize_filename
from llmfiles.transfer._filenames import numbered

SEPARATORS = ("/", "\\", "\0")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("report.pdf", "report.pdf", id="plain"),
        pytest.param("../../etc/passwd", "_.._etc_passwd", id="traversal"),
        pytest.param("..\\..\\boot.ini", "_.._boot.ini", id="windows-traversal"),
        pytest.param("\uff0e\uff0e\uff0fsecret", "_secret", id="fullwidth-dots-slash"),
        pytest.param(".bashrc", "bashrc", id="leading-dot"),
        pytest.param(".", "download", id="dot"),
        pytest.param("..", "download", id="dotdot"),
        pytest.param("", "download", id="empty"),
        pytest.param("a\0b\x07c\x7f", "abc", id="nul-and-controls"),
        pytest.param("evil\u202etxt.exe", "eviltxt.exe", id="bidi-override"),
        pytest.param("zero\u200bwidth\ufeff.txt", "zerowidth.txt", id="zero-width-and-bom"),
        pytest.param("CON", "_CON", id="reserved"),
        pytest.param("nul.txt", "_nul.txt", id="reserved-with-extension"),
        pytest.param("com1 .tar.gz", "_com1 .tar.gz", id="reserved-trailing-space"),
        pytest.param("LPT9", "_LPT9", id="lpt9"),
        pytest.param("COM10", "COM10", id="not-reserved"),
        pytest.param("name. . ", "name", id="trailing-dots-spaces"),
        pytest.param("C:evil:stream", "C_evil_stream", id="drive-and-ads"),
        pytest.param('a<b>c"d|e?f*g', "a_b_c_d_e_f_g", id="windows-forbidden"),
        pytest.param("line\u2028break", "linebreak", id="line-separator"),
        pytest.param("\ufb01le.txt", "file.txt", id="nfkc-ligature"),
    ],
)
def test_sanitize_rules(raw: str, expected: str) -> None:
    assert sanitize_filename(raw) == expected


def test_long_name_keeps_extension_within_255_bytes() -> None:
    name = "\u00e9" * 300 + ".pdf"
    result = sanitize_filename(name)
    assert result.endswith(".pdf")
    assert len(result.encode()) <= 255
    assert len(result.encode()) >= 250  # cut on a character boundary, not far below the limit


def test_long_extension_is_treated_as_name() -> None:
    result = sanitize_filename("a." + "x" * 400)
    assert len(result.encode()) == 255
    assert result.startswith("a.x")


@pytest.mark.parametrize("default", ["", "../x", ".hidden", "a/b"])
def test_unsafe_default_is_refused(default: str) -> None:
    with pytest.raises(ConfigError, match="default="):
        sanitize_filename("x", default=default)


def test_non_string_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="name="):
        sanitize_filename(b"x")  # type: ignore[arg-type]


tricky = st.sampled_from(
    ["/", "\\", ".", " ", "\0", "\uff0e", "\uff0f", "\u202e", "\u200b", ":", "CON", "nul"]
)
names = st.lists(st.one_of(st.text(max_size=40), tricky), max_size=12).map("".join) | st.text(max_size=300)


@given(names)
def test_property_no_separator_never_dots(raw: str) -> None:
    result = sanitize_filename(raw)
    assert not any(sep in result for sep in SEPARATORS)
    assert result not in {".", ".."}
    assert result


@given(names)
def test_property_idempotent(raw: str) -> None:
    once = sanitize_filename(raw)
    assert sanitize_filename(once) == once


@given(names)
def test_property_length_bound(raw: str) -> None:
    assert len(sanitize_filename(raw).encode("utf-8")) <= 255


@given(st.text(min_size=1, max_size=400), st.sampled_from(["pdf", "tar.gz", "jsonl", "\u6587\u6863"]))
def test_property_extension_kept(stem: str, extension: str) -> None:
    result = sanitize_filename(f"x{stem}.{extension}")
    last = extension.rsplit(".", 1)[-1]
    assert result.endswith("." + unicodedata.normalize("NFKC", last))


@given(names, st.sampled_from(["/tmp/base", "relative/dir", "/"]))
def test_property_join_stays_inside(raw: str, directory: str) -> None:
    joined = safe_join(directory, sanitize_filename(raw))
    base = os.path.realpath(directory)
    assert os.path.dirname(joined) == base
    assert os.path.commonpath([base, os.path.normpath(joined)]) == base


@given(names, st.integers(min_value=1, max_value=10**6))
def test_property_numbered_is_safe_and_distinct(raw: str, number: int) -> None:
    name = sanitize_filename(raw)
    result = numbered(name, number)
    assert result == sanitize_filename(result)
    assert f"({number})" in result
    assert result != name


ATTACKS = [
    "../../../../etc/passwd",
    "..%2f..%2fetc%2fpasswd",
    "....//....//etc/passwd",
    "/etc/passwd",
    "\\\\server\\share\\x",
    "C:\\Windows\\System32\\drivers\\etc\\hosts",
    "..\u2215..\u2215etc",  # division slash
    "\uff0e\uff0e\uff0f\uff0e\uff0e\uff0fetc",
    "..\u0000/etc/passwd",
    "\u202e../\u202c",
    "foo/../../bar",
    "~/.ssh/authorized_keys",
    "AUX.txt",
    "...",
    " .. ",
    "\u2024\u2024/x",  # one dot leader
    "\ufe52\ufe52\ufe68x",  # small full stop, small reverse solidus
]


@pytest.mark.parametrize("attack", ATTACKS)
def test_attack_corpus_never_escapes(attack: str, tmp_path: Path) -> None:
    target = safe_join(tmp_path, sanitize_filename(attack))
    assert target.parent == tmp_path.resolve()
    assert target.name not in {"", ".", ".."}


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "a\\b", "a\0b"])
def test_safe_join_refuses_unsafe_names(name: str, tmp_path: Path) -> None:
    with pytest.raises(UnsafeFilenameError, match="name="):
        safe_join(tmp_path, name)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param('attachment; filename="a.txt"', "a.txt", id="quoted"),
        pytest.param("attachment; filename=a.txt", "a.txt", id="token"),
        pytest.param("attachment; filename*=UTF-8''%E2%82%AC%20rates.txt", "\u20ac rates.txt", id="rfc5987"),
        pytest.param(
            "attachment; filename*=UTF-8''%E2%82%AC.txt; filename=\"fallback.txt\"",
            "\u20ac.txt",
            id="star-first",
        ),
        pytest.param(
            "attachment; filename=\"fallback.txt\"; filename*=utf-8'en'%E2%82%AC.txt",
            "\u20ac.txt",
            id="star-last",
        ),
        pytest.param("attachment; filename*=iso-8859-1''%A3.txt", "\u00a3.txt", id="latin1"),
        pytest.param(r'attachment; filename="a\"b.txt"', 'a"b.txt', id="escaped-quote"),
        pytest.param('inline; FILENAME="UP.txt"', "UP.txt", id="case-insensitive-key"),
        pytest.param("attachment", None, id="no-params"),
        pytest.param("attachment; size=3", None, id="no-filename"),
        pytest.param('attachment; filename=""', None, id="empty"),
        pytest.param(
            "attachment; filename*=UTF-8''%FF.txt; filename=ok.txt", "ok.txt", id="bad-utf8-falls-back"
        ),
        pytest.param("attachment; filename*=koi8-r''x.txt; filename=ok.txt", "ok.txt", id="unknown-charset"),
        pytest.param(
            'attachment; foo="; filename=evil.txt"; filename=good.txt', "good.txt", id="quoted-decoy"
        ),
        pytest.param('attachment; filename="../../x"', "../../x", id="returned-unsanitised"),
        pytest.param("", None, id="empty-header"),
    ],
)
def test_parse_content_disposition(header: str, expected: str | None) -> None:
    assert parse_content_disposition(header) == expected


@given(st.text(max_size=200))
def test_property_parser_never_raises(header: str) -> None:
    result = parse_content_disposition(header)
    assert result is None or isinstance(result, str)


@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=100))
def test_property_rfc5987_round_trip(name: str) -> None:
    header = f"attachment; filename=\"fallback\"; filename*=UTF-8''{quote(name, safe='')}"
    assert parse_content_disposition(header) == name


DEFAULT_IGNORABLES = [
    "\u034f",
    "\u115f",
    "\u1160",
    "\u17b4",
    "\u17b5",
    "\u180b",
    "\u180e",
    "\u180f",
    "\u3164",
    "\ufe00",
    "\ufe0f",
    "\uffa0",
    "\U000e0100",
    "\U000e01ef",
]


@pytest.mark.parametrize("ignorable", DEFAULT_IGNORABLES, ids=lambda ch: f"U+{ord(ch):04X}")
def test_default_ignorable_code_points_are_removed(ignorable: str) -> None:
    assert sanitize_filename(f"a{ignorable}b.txt") == "ab.txt"
    assert sanitize_filename(ignorable * 3) == "download"  # never a name that renders as nothing


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # NFKC cannot compose across the zero-width space; once it is gone, e + U+0301 composes to é.
        pytest.param("e\u200b\u0301", "\u00e9", id="zwsp-between-base-and-accent"),
        pytest.param("a\u034f\u0308.txt", "\u00e4.txt", id="cgj-between-base-and-diaeresis"),
        pytest.param("\u1100\u200b\u1161", "\uac00", id="hangul-jamo-across-zwsp"),
    ],
)
def test_sanitising_reaches_a_fixed_point_that_one_pass_misses(raw: str, expected: str) -> None:
    assert sanitize_filename(raw) == expected
    assert sanitize_filename(expected) == expected
