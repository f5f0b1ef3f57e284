"""Julian Reschke's tc2231 test cases for Content-Disposition (RFC 6266, RFC 5987), as a table.

Each row: the case's name on the public test page, the header (its bytes decoded as ISO-8859-1, as the
cases that carry raw non-ASCII octets intend), and the name the suite expects a user agent to offer, or
None where it expects the header (or the parameter) to be ignored. Rows the suite leaves open ("almost
any behavior is acceptable", "undefined", the optional RFC 2231 continuations) are not judged: the
parser must still return a name or None without raising. The 80 judged rows must come out exactly as the
suite expects, except the three path rows, where the suite asks to "discard the path information": the
parser returns the name as sent and `sanitize_filename` turns every separator into ``_``, which is what
the `PATH_ROWS` check accepts.
"""

from dataclasses import dataclass

import pytest

from llmfiles.transfer import parse_content_disposition, sanitize_filename


@dataclass(frozen=True)
class Case:
    name: str
    header: str
    expected: str | None
    judged: bool = True


CASES = [
    # Disposition-Type: inline
    Case("inlonly", "inline", None),
    Case("inlonlyquoted", '"inline"', None),
    Case("inlwithasciifilename", 'inline; filename="foo.html"', "foo.html"),
    Case("inlwithfnattach", 'inline; filename="Not an attachment!"', "Not an attachment!"),
    Case("inlwithasciifilenamepdf", 'inline; filename="foo.pdf"', "foo.pdf"),
    # Disposition-Type: attachment
    Case("attonly", "attachment", None),
    Case("attonlyquoted", '"attachment"', None),
    Case("attonly403", "attachment", None),
    Case("attonlyucase", "ATTACHMENT", None),
    Case("attwithasciifilename", 'attachment; filename="foo.html"', "foo.html"),
    Case(
        "attwithasciifilename25",
        'attachment; filename="0000000000111111111122222"',
        "0000000000111111111122222",
    ),
    Case(
        "attwithasciifilename35",
        'attachment; filename="00000000001111111111222222222233333"',
        "00000000001111111111222222222233333",
    ),
    Case("attwithasciifnescapedchar", r'attachment; filename="f\oo.html"', "foo.html"),
    Case(
        "attwithasciifnescapedquote",
        r'attachment; filename="\"quoting\" tested.html"',
        '"quoting" tested.html',
    ),
    Case(
        "attwithquotedsemicolon",
        'attachment; filename="Here\'s a semicolon;.html"',
        "Here's a semicolon;.html",
    ),
    Case("attwithfilenameandextparam", 'attachment; foo="bar"; filename="foo.html"', "foo.html"),
    Case("attwithfilenameandextparamescaped", r'attachment; foo="\"\\";filename="foo.html"', "foo.html"),
    Case("attwithasciifilenameucase", 'attachment; FILENAME="foo.html"', "foo.html"),
    Case("attwithasciifilenamenq", "attachment; filename=foo.html", "foo.html"),
    Case("attwithtokfncommanq", "attachment; filename=foo,bar.html", None),
    Case("attwithasciifilenamenqs", "attachment; filename=foo.html ;", None),
    Case("attemptyparam", "attachment; ;filename=foo", None),
    Case("attwithasciifilenamenqws", "attachment; filename=foo bar.html", None),
    Case("attwithfntokensq", "attachment; filename='foo.bar'", "'foo.bar'"),
    Case("attwithisofnplain", 'attachment; filename="foo-\u00e4.html"', "foo-\u00e4.html"),
    Case("attwithutf8fnplain", 'attachment; filename="foo-\u00c3\u00a4.html"', "foo-\u00c3\u00a4.html"),
    Case("attwithfnrawpctenca", 'attachment; filename="foo-%41.html"', "foo-%41.html"),
    Case("attwithfnusingpct", 'attachment; filename="50%.html"', "50%.html"),
    Case("attwithfnrawpctencaq", r'attachment; filename="foo-%\41.html"', "foo-%41.html"),
    Case("attwithnamepct", 'attachment; name="foo-%41.html"', None, judged=False),
    Case("attwithfilenamepctandiso", 'attachment; filename="\u00e4-%41.html"', "\u00e4-%41.html"),
    Case(
        "attwithfnrawpctenclong",
        'attachment; filename="foo-%c3%a4-%e2%82%ac.html"',
        "foo-%c3%a4-%e2%82%ac.html",
    ),
    Case("attwithasciifilenamews1", 'attachment; filename ="foo.html"', "foo.html"),
    Case("attwith2filenames", 'attachment; filename="foo.html"; filename="bar.html"', None),
    Case("attfnbrokentoken", "attachment; filename=foo[1](2).html", None),
    Case("attfnbrokentokeniso", "attachment; filename=foo-\u00e4.html", None),
    Case("attfnbrokentokenutf", "attachment; filename=foo-\u00c3\u00a4.html", None),
    Case("attmissingdisposition", "filename=foo.html", None),
    Case("attmissingdisposition2", "x=y; filename=foo.html", None),
    Case("attmissingdisposition3", '"foo; filename=bar;baz"; filename=qux', None),
    Case("attmissingdisposition4", "filename=foo.html, filename=bar.html", None),
    Case("emptydisposition", "; filename=foo.html", None),
    Case("doublecolon", ": inline; attachment; filename=foo.html", None),
    Case("attandinline", "inline; attachment; filename=foo.html", None),
    Case("attandinline2", "attachment; inline; filename=foo.html", None),
    Case("attbrokenquotedfn", 'attachment; filename="foo.html".txt', None),
    Case("attbrokenquotedfn2", 'attachment; filename="bar', None),
    Case("attbrokenquotedfn3", 'attachment; filename=foo"bar;baz"qux', None),
    Case("attmultinstances", "attachment; filename=foo.html, attachment; filename=bar.html", None),
    Case("attmissingdelim", "attachment; foo=foo filename=bar", None),
    Case("attmissingdelim2", "attachment; filename=bar foo=foo", None),
    Case("attmissingdelim3", "attachment filename=bar", None),
    Case("attreversed", "filename=foo.html; attachment", None),
    Case("attconfusedparam", "attachment; xfilename=foo.html", None),
    Case("attabspath", 'attachment; filename="/foo.html"', "foo.html"),
    Case("attabspathwin", r'attachment; filename="\\foo.html"', "foo.html"),
    # Additional parameters
    Case("attcdate", 'attachment; creation-date="Wed, 12 Feb 1997 16:29:51 -0500"', None),
    Case("attmdate", 'attachment; modification-date="Wed, 12 Feb 1997 16:29:51 -0500"', None),
    # Disposition-Type extension
    Case("dispext", "foobar", None),
    Case("dispextbadfn", 'attachment; example="filename=example.txt"', None),
    # RFC 2231/5987 encoding: character sets
    Case("attwithisofn2231iso", "attachment; filename*=iso-8859-1''foo-%E4.html", "foo-\u00e4.html"),
    Case(
        "attwithfn2231utf8",
        "attachment; filename*=UTF-8''foo-%c3%a4-%e2%82%ac.html",
        "foo-\u00e4-\u20ac.html",
    ),
    Case("attwithfn2231noc", "attachment; filename*=''foo-%c3%a4-%e2%82%ac.html", None, judged=False),
    Case("attwithfn2231utf8comp", "attachment; filename*=UTF-8''foo-a%cc%88.html", "foo-a\u0308.html"),
    Case("attwithfn2231utf8-bad", "attachment; filename*=iso-8859-1''foo-%c3%a4-%e2%82%ac.html", None),
    Case("attwithfn2231iso-bad", "attachment; filename*=utf-8''foo-%E4.html", None),
    Case("attwithfn2231ws1", "attachment; filename *=UTF-8''foo-%c3%a4.html", None),
    Case("attwithfn2231ws2", "attachment; filename*= UTF-8''foo-%c3%a4.html", "foo-\u00e4.html"),
    Case("attwithfn2231ws3", "attachment; filename* =UTF-8''foo-%c3%a4.html", "foo-\u00e4.html"),
    Case("attwithfn2231quot", "attachment; filename*=\"UTF-8''foo-%c3%a4.html\"", None),
    Case("attwithfn2231quot2", 'attachment; filename*="foo%20bar.html"', None),
    Case("attwithfn2231singleqmissing", "attachment; filename*=UTF-8'foo-%c3%a4.html", None),
    Case("attwithfn2231nbadpct1", "attachment; filename*=UTF-8''foo%", None),
    Case("attwithfn2231nbadpct2", "attachment; filename*=UTF-8''f%oo.html", None),
    Case("attwithfn2231dpct", "attachment; filename*=UTF-8''A-%2541.html", "A-%41.html"),
    Case("attwithfn2231abspathdisguised", "attachment; filename*=UTF-8''%5cfoo.html", "foo.html"),
    # RFC 2231 encoding: continuations (optional; RFC 6266 leaves them out of HTTP)
    Case("attfncont", 'attachment; filename*0="foo."; filename*1="html"', None, judged=False),
    Case("attfncontqs", r'attachment; filename*0="foo"; filename*1="\b\a\r.html"', None, judged=False),
    Case(
        "attfncontenc", "attachment; filename*0*=UTF-8''foo-%c3%a4; filename*1=\".html\"", None, judged=False
    ),
    Case("attfncontlz", 'attachment; filename*0="foo"; filename*01="bar"', None, judged=False),
    Case("attfncontnc", 'attachment; filename*0="foo"; filename*2="bar"', None, judged=False),
    Case("attfnconts1", 'attachment; filename*0="foo."; filename*2="html"', None, judged=False),
    Case("attfncontord", 'attachment; filename*1="bar"; filename*0="foo"', None, judged=False),
    # RFC 2231/5987 encoding: fallback behaviour
    Case(
        "attfnboth",
        "attachment; filename=\"foo-ae.html\"; filename*=UTF-8''foo-%c3%a4.html",
        "foo-\u00e4.html",
    ),
    Case(
        "attfnboth2",
        "attachment; filename*=UTF-8''foo-%c3%a4.html; filename=\"foo-ae.html\"",
        "foo-\u00e4.html",
    ),
    Case(
        "attfnboth3",
        "attachment; filename*0*=ISO-8859-15''euro-sign%3d%a4; filename*=ISO-8859-1''currency-sign%3d%a4",
        "currency-sign=\u00a4",
    ),
    Case("attnewandfn", 'attachment; foobar=x; filename="foo.html"', "foo.html"),
    # RFC 2047 encoding (not part of HTTP: the token form is invalid, the quoted form is taken literally)
    Case("attrfc2047token", "attachment; filename==?ISO-8859-1?Q?foo-=E4.html?=", None),
    Case(
        "attrfc2047quoted",
        'attachment; filename="=?ISO-8859-1?Q?foo-=E4.html?="',
        "=?ISO-8859-1?Q?foo-=E4.html?=",
    ),
]
JUDGED = [case for case in CASES if case.judged]
PATH_ROWS = {"attabspath", "attabspathwin", "attwithfn2231abspathdisguised"}
"""Rows where the suite expects the path dropped; the parser keeps it, the sanitiser neutralises it."""


def exact(case: Case) -> bool:
    """Whether the parser's answer is exactly what the suite expects."""
    return parse_content_disposition(case.header) == case.expected


def test_the_table_is_the_whole_suite() -> None:
    assert len(CASES) == 89
    assert len({case.name for case in CASES}) == len(CASES)
    assert len(JUDGED) == 80


@pytest.mark.parametrize("case", [c for c in JUDGED if c.name not in PATH_ROWS], ids=lambda c: c.name)
def test_judged_case_comes_out_as_the_suite_expects(case: Case) -> None:
    assert parse_content_disposition(case.header) == case.expected


@pytest.mark.parametrize("case", [c for c in JUDGED if c.name in PATH_ROWS], ids=lambda c: c.name)
def test_path_case_loses_its_path_once_sanitised(case: Case) -> None:
    name = parse_content_disposition(case.header)
    assert name is not None
    assert sanitize_filename(name) == "_foo.html"


@pytest.mark.parametrize("case", [c for c in CASES if not c.judged], ids=lambda c: c.name)
def test_unjudged_case_never_raises(case: Case) -> None:
    result = parse_content_disposition(case.header)
    assert result is None or isinstance(result, str)


def test_score_reaches_the_best_python_parser() -> None:
    score = sum(exact(case) for case in JUDGED)
    print(f"tc2231: {score} of {len(JUDGED)} judged cases exactly as the suite expects")
    assert score >= 76
