"""The query language parser: each construct's AST, precedence, escapes and errors."""

from __future__ import annotations

import pytest

from casescope.store.query import QuerySyntaxError, parse_query, render
from casescope.store.query_ast import (
    And,
    Compare,
    Exists,
    Literal,
    Match,
    Node,
    Not,
    Op,
    Or,
    Pattern,
    Range,
    Text,
)


def word(text: str) -> Text:
    return Text(Literal(text))


@pytest.mark.parametrize(
    ("query", "ast"),
    [
        ("mimikatz", word("mimikatz")),
        ('"sekurlsa logonpasswords"', word("sekurlsa logonpasswords")),
        ('"admin"', word("admin")),  # a quoted word is the same word
        ("psexe*", Text(Pattern("psexe*"))),
        ("*svc", Text(Pattern("*svc"))),
        ("ps?xe", Text(Pattern("ps?xe"))),
        ("EventID:4624", Match("EventID", Literal("4624"))),
        ("EventID: 4624", Match("EventID", Literal("4624"))),
        (
            'NewProcessName:"C:\\Program Files\\x.exe"',
            Match("NewProcessName", Literal("C:\\Program Files\\x.exe")),
        ),
        ("user:ali*", Match("user", Pattern("ali*"))),
        ("Image:*\\\\mimikatz.exe", Match("Image", Pattern("*\\\\mimikatz.exe"))),
        ("host.name:web-01", Match("host.name", Literal("web-01"))),
        ("@timestamp:2024", Match("@timestamp", Literal("2024"))),
        ("EventID:[4624 TO 4634]", Range("EventID", "4624", "4634")),
        ("EventID:{4624 TO 4634}", Range("EventID", "4624", "4634", False, False)),
        ("EventID:[4624 TO *}", Range("EventID", "4624", None, True, False)),
        ('ts:["2024-03-01 10:00" TO *]', Range("ts", "2024-03-01 10:00", None)),
        ("EventID:>4000", Compare("EventID", Op.GT, "4000")),
        ("EventID:>=4000", Compare("EventID", Op.GTE, "4000")),
        ("EventID:<4000", Compare("EventID", Op.LT, "4000")),
        ("EventID:<=4000", Compare("EventID", Op.LTE, "4000")),
        ('ts:>"2024-03-01 10:00"', Compare("ts", Op.GT, "2024-03-01 10:00")),
        ("_exists_:ScriptBlockText", Exists("ScriptBlockText")),
        ("Port:-1", Match("Port", Literal("-1"))),  # after a colon, - is part of the value
        ("Port:!x", Match("Port", Literal("!x"))),
        ("ts:>2024-03-01T10:00", Compare("ts", Op.GT, "2024-03-01T10:00")),
        ("Image:C:\\Windows\\*", Match("Image", Literal("C:\\Windows*"))),  # \* is a literal star
        ("Image:C:\\Windows\\\\*", Match("Image", Pattern("C:\\\\Windows\\\\*"))),
        # a quoted name before a colon is a field name (Defender's `New Value`)
        ('"New Value":*Exclusions*', Match("New Value", Pattern("*Exclusions*"))),
        ('"Severity ID":>=4', Compare("Severity ID", Op.GTE, "4")),
        ('_exists_:"Old Value"', Exists("Old Value")),
    ],
)
def test_terms(query: str, ast: object) -> None:
    assert parse_query(query) == ast


@pytest.mark.parametrize(
    ("query", "ast"),
    [
        ("", None),
        ("   \t\n", None),
        ("a b", And((word("a"), word("b")))),
        ("a AND b", And((word("a"), word("b")))),
        ("a && b", And((word("a"), word("b")))),
        ("a OR b", Or((word("a"), word("b")))),
        ("a || b", Or((word("a"), word("b")))),
        ("NOT a", Not(word("a"))),
        ("!a", Not(word("a"))),
        ("! a", Not(word("a"))),
        ("-a", Not(word("a"))),
        ("NOT NOT a", Not(Not(word("a")))),
        # NOT binds tighter than AND, AND (explicit or implicit) tighter than OR
        ("NOT a b", And((Not(word("a")), word("b")))),
        ("a b OR c", Or((And((word("a"), word("b"))), word("c")))),
        ("a OR b c", Or((word("a"), And((word("b"), word("c")))))),
        ("a OR b AND c OR d", Or((word("a"), And((word("b"), word("c"))), word("d")))),
        ("a OR NOT b AND c", Or((word("a"), And((Not(word("b")), word("c")))))),
        ("(a OR b) c", And((Or((word("a"), word("b"))), word("c")))),
        ("-(a OR b)", Not(Or((word("a"), word("b"))))),
        ("a AND (b AND c)", And((word("a"), And((word("b"), word("c")))))),
        ("a AND b AND c", And((word("a"), word("b"), word("c")))),
        # operators are upper case whole words; anything else is text
        ("a and b", And((word("a"), word("and"), word("b")))),
        ("ANDROID ORACLE", And((word("ANDROID"), word("ORACLE")))),
        ("a&&b", word("a&&b")),
        ("a - b", And((word("a"), word("-"), word("b")))),
        (
            "EventID:(4624 OR 4625)",
            Or((Match("EventID", Literal("4624")), Match("EventID", Literal("4625")))),
        ),
        (
            "EventID:(>4000 AND -4624)",
            And((Compare("EventID", Op.GT, "4000"), Not(Match("EventID", Literal("4624"))))),
        ),
        ("_exists_:(a OR b)", Or((Exists("a"), Exists("b")))),
        (
            "Image:(C:\\x* OR *.ps1)",
            Or((Match("Image", Pattern("C:\\\\x*")), Match("Image", Pattern("*.ps1")))),
        ),
    ],
)
def test_structure(query: str, ast: object) -> None:
    assert parse_query(query) == ast


@pytest.mark.parametrize(
    ("query", "text"),
    [
        # Windows paths: a backslash before an ordinary character stays a backslash
        ("C:\\Windows\\System32", "C:\\Windows\\System32"),
        ('"C:\\Windows\\System32"', "C:\\Windows\\System32"),
        ('"C:\\Windows\\\\"', "C:\\Windows\\"),  # a trailing backslash is written \\
        ("\\\\\\\\server\\share", "\\\\server\\share"),  # each \\ is one backslash
        ('"say \\"hi\\""', 'say "hi"'),
        ("a\\ b", "a b"),
        ("a\\:b", "a:b"),
        ("\\(x\\)", "(x)"),
        ("\\-enc", "-enc"),  # at the start of a word, \- is a literal dash ...
        ("a\\-b", "a\\-b"),  # ... elsewhere it is two characters
        ("HKLM\\CLSID\\{0AB1}", "HKLM\\CLSID\\{0AB1}"),
        ("\\[x]", "[x]"),
        ("x\\", "x\\"),
        # colons that do not start a field
        ("sekurlsa::logonpasswords", "sekurlsa::logonpasswords"),
        ("fe80::1:2", "fe80::1:2"),
        ("http://evil.com:8080/x", "http://evil.com:8080/x"),
        ("c:/temp", "c:/temp"),
        ("{GUID-1}", "{GUID-1}"),
        ("héllo", "héllo"),
    ],
)
def test_escapes_and_literal_text(query: str, text: str) -> None:
    assert parse_query(query) == word(text)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ('"unclosed', "unclosed quote at column 1"),
        ('user:alice "oops', "unclosed quote at column 12"),
        ("(a", "unclosed ( at column 1"),
        ("a (b OR c", "unclosed ( at column 3"),
        ("a)", "unmatched ) at column 2"),
        ("()", "empty parentheses at column 1"),
        ("a AND", "AND needs something after it at column 3"),
        ("a OR", "OR needs something after it at column 3"),
        ("OR a", "OR needs something before it at column 1"),
        ("a AND OR b", "OR needs something before it at column 7"),
        ("NOT", "NOT needs something after it at column 1"),
        ("a (NOT)", "NOT needs something after it at column 4"),
        ("field:", "a value is missing after 'field:' at column 7"),
        ("field: OR x", "a value is missing after 'field:' at column 8"),
        ("x:>", "a value is missing after 'x:>' at column 4"),
        ("x:[1 TO 2", "unclosed range at column 3"),
        ("x:[1 2]", "a range is written [low TO high] at column 6"),
        ("x:[1 TO 2 3]", "a range is written [low TO high] at column 11"),
        ("[1 TO 2]", "a range needs a field name: write field:[low TO high] at column 1"),
        ("a/b:c", "'a/b' is not a field name at column 1"),
        ("10:00", "'10' is not a field name at column 1"),
        ("x a\\ b:c", "'a\\\\ b' is not a field name at column 3"),
        (":x", "a field name is missing before ':' at column 1"),
        ("NOT:x", "NOT is an operator, not a field name at column 1"),
        ("_exists_:a*", "_exists_ needs a field name at column 10"),
        ("a\x00b", "NUL character in the query at column 2"),
        ("a \udcff", "the query is not valid text at column 3"),
        ("(" * 60 + "a" + ")" * 60, "the query nests deeper than 50 levels at column 51"),
    ],
)
def test_errors_say_where(query: str, message: str) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        parse_query(query)
    assert str(caught.value).startswith(message)
    assert caught.value.column == caught.value.position + 1
    assert isinstance(caught.value, ValueError)


def test_unclosed_quote_after_escaped_quote_hints_at_the_rule() -> None:
    with pytest.raises(QuerySyntaxError, match=r"end a value with a backslash as"):
        parse_query('path:"C:\\Windows\\" user:x')


def test_positions_point_at_values_but_do_not_affect_equality() -> None:
    ast = parse_query("a  EventID:[1 TO 2]")
    assert isinstance(ast, And)
    term = ast.children[1]
    assert isinstance(term, Range)
    assert (term.low_pos, term.high_pos) == (12, 17)
    assert term == Range("EventID", "1", "2")


@pytest.mark.parametrize(
    ("ast", "text"),
    [
        (And((word("a"), Or((word("b"), word("c"))))), "a AND (b OR c)"),
        (Or((And((word("a"), word("b"))), word("c"))), "a AND b OR c"),
        (Not(And((word("a"), word("b")))), "NOT (a AND b)"),
        (word("-x"), '"-x"'),
        (word("AND"), '"AND"'),
        (word("C:\\Windows\\"), '"C:\\Windows\\\\"'),
        (Text(Pattern("-x*")), "\\-x*"),
        (Text(Pattern("a b*")), "a\\ b*"),
        (Match("C", Pattern("\\\\x*")), "C:(\\\\x*)"),  # C:\\x* would read as a path
        (Match("u", Literal("http://x")), 'u:"http://x"'),
        (Compare("x", Op.GT, "=1"), 'x:>"=1"'),
        (Range("x", "*", None), 'x:["*" TO *]'),
        (Exists("a.b"), "_exists_:a.b"),
        (Match("New Value", Pattern("*x*")), '"New Value":*x*'),
        (Exists("Old Value"), '_exists_:"Old Value"'),
        (Compare("OR", Op.GT, "1"), '"OR":>1'),
    ],
)
def test_render(ast: Node, text: str) -> None:
    assert render(ast) == text
    assert parse_query(text) == ast
