"""Operator semantics of compiled conditions (docs/engine.md)."""

from __future__ import annotations

from typing import Any

import pytest

from airgate.engine.conditions import compile_node, leaves, to_number, trace_node
from airgate.model import AllOf, AnyOf, Condition, NotOf

FIELDS: dict[str, Any] = {
    "name": "Evil.EXE",
    "score": 85,
    "scoreText": "85",
    "ratio": 0.5,
    "flag": True,
    "nothing": None,
    "path": "C:\\Users\\bob\\AppData\\Local\\Temp\\x.exe",
    "tags": ["Phish", "urgent", 3],
    "ip": "10.1.2.3",
    "ip6": "2001:db8::1",
    "fileDetails": {"sha256": "ABC", "signer": {"name": "Contoso"}},
    "users": [{"name": "alice", "admin": False}, {"name": "bob", "admin": True}],
    "nested": [[1, 2], [3]],
}


@pytest.mark.parametrize(
    ("field", "op", "value", "expected"),
    [
        # eq / ne: strings case-insensitive, kinds never mix
        ("name", "eq", "evil.exe", True),
        ("name", "eq", "evil", False),
        ("score", "eq", 85, True),
        ("score", "eq", 85.0, True),
        ("score", "eq", "85", False),
        ("scoreText", "eq", 85, False),
        ("flag", "eq", True, True),
        ("flag", "eq", 1, False),
        ("score", "eq", True, False),
        ("name", "ne", "EVIL.exe", False),
        ("name", "ne", "other", True),
        ("missing", "eq", "x", False),
        ("missing", "ne", "x", True),
        ("nothing", "ne", "x", True),
        ("nothing", "eq", None, False),
        # in / not_in
        ("name", "in", ("a", "EVIL.exe"), True),
        ("name", "in", ("a", "b"), False),
        ("score", "in", (1, 85), True),
        ("name", "not_in", ("a", "evil.exe"), False),
        ("name", "not_in", ("a",), True),
        ("missing", "in", ("a",), False),
        ("missing", "not_in", ("a",), True),
        # exists
        ("name", "exists", True, True),
        ("nothing", "exists", True, False),
        ("nothing", "exists", False, True),
        ("missing", "exists", False, True),
        ("name", "exists", False, False),
        # comparisons: numbers and numeric strings only
        ("score", "gt", 80, True),
        ("score", "gt", 85, False),
        ("score", "gte", 85, True),
        ("score", "lt", 90, True),
        ("score", "lte", 84, False),
        ("scoreText", "gt", 80, True),
        ("name", "gt", 0, False),
        ("flag", "gt", 0, False),
        ("missing", "lt", 100, False),
        ("ratio", "lt", 1, True),
        # glob: case-insensitive, / and \ alike, * crosses separators
        ("path", "glob", "c:/users/*/appdata/local/temp/*", True),
        ("path", "glob", "*\\TEMP\\*.exe", True),
        ("path", "glob", "*.dll", False),
        ("name", "glob", "evil.?x?", True),
        ("name", "glob", "[de]vil.exe", True),
        ("name", "glob", "[!e]vil.exe", False),
        ("score", "glob", "8*", False),
        # regex: as written
        ("name", "regex", r"\.exe$", False),
        ("name", "regex", r"(?i)\.exe$", True),
        ("name", "regex", "vil", True),
        # contains: list element (eq semantics) or substring
        ("tags", "contains", "phish", True),
        ("tags", "contains", "ph", False),
        ("tags", "contains", 3, True),
        ("name", "contains", "IL.E", True),
        ("name", "contains", "zzz", False),
        ("missing", "contains", "a", False),
        # cidr
        ("ip", "cidr", "10.0.0.0/8", True),
        ("ip", "cidr", ("192.168.0.0/16", "10.1.2.0/24"), True),
        ("ip", "cidr", "192.168.0.0/16", False),
        ("ip6", "cidr", "2001:db8::/32", True),
        ("ip6", "cidr", "10.0.0.0/8", False),
        ("name", "cidr", "10.0.0.0/8", False),
        ("score", "cidr", "10.0.0.0/8", False),
        # dotted paths and lists on the way
        ("fileDetails.sha256", "eq", "abc", True),
        ("fileDetails.signer.name", "eq", "contoso", True),
        ("fileDetails.signer.missing", "ne", "x", True),
        ("name.length", "exists", True, False),
        ("users.name", "eq", "bob", True),
        ("users.name", "eq", "carol", False),
        ("users.name", "ne", "bob", False),
        ("users.admin", "eq", True, True),
        ("tags", "eq", "URGENT", True),
        ("nested", "eq", 3, True),
    ],
)
def test_operator_table(field: str, op: str, value: Any, expected: bool) -> None:
    assert compile_node(Condition(field, op, value))(FIELDS) is expected


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        (AllOf((Condition("score", "gt", 80), Condition("name", "glob", "*.exe"))), True),
        (AllOf((Condition("score", "gt", 80), Condition("name", "glob", "*.dll"))), False),
        (AnyOf((Condition("score", "gt", 90), Condition("name", "glob", "*.exe"))), True),
        (AnyOf((Condition("score", "gt", 90), Condition("missing", "exists", True))), False),
        (NotOf(Condition("score", "gt", 90)), True),
        (NotOf(Condition("missing", "ne", "x")), False),
        # nested all-branches flatten
        (AllOf((AllOf((Condition("score", "gt", 1),)), Condition("flag", "eq", True))), True),
        # one all-branch: value tests on one path must hold for the same value
        (AllOf((Condition("users.name", "eq", "bob"), Condition("users.name", "eq", "alice"))),
         False),
        (AllOf((Condition("nested", "gt", 1), Condition("nested", "lt", 3))), True),
        (AllOf((Condition("nested", "gt", 3), Condition("nested", "lt", 1))), False),
        # ...but separate branches may each pick their own element
        (AnyOf((Condition("users.name", "eq", "bob"), Condition("users.name", "eq", "zed"))),
         True),
    ],
)
def test_combinators(node: Any, expected: bool) -> None:
    assert compile_node(node)(FIELDS) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(3, 3), (2.5, 2.5), ("85", 85.0), (" -1.5e2 ", -150.0), ("1_000", None), ("inf", None),
     ("nan", None), (True, None), (None, None), ("0x10", None), (float("inf"), None)],
)
def test_to_number(value: Any, expected: Any) -> None:
    assert to_number(value) == expected


def test_leaves_fan_out_and_drop_nulls() -> None:
    fields = {"a": [{"b": 1}, {"b": None}, {"c": 2}, {"b": [3, 4]}]}
    assert leaves(fields, "a.b") == [1, [3, 4]]
    assert leaves(fields, "a.z") == []


def test_trace_records_values_and_outcomes() -> None:
    node = AllOf((Condition("score", "gt", 90), Condition("name", "eq", "evil.exe")))
    trace = trace_node(node, FIELDS)
    assert [(t.kind, t.held, t.actual) for t in trace] == [
        ("all", False, None), ("condition", False, 85), ("condition", True, "Evil.EXE")]
    assert trace[1].as_dict()["op"] == "gt"


def test_hostile_regex_values_are_data() -> None:
    pred = compile_node(Condition("name", "regex", "^a"))
    assert pred({"name": ["\x1b[31mred", "abc"]}) is True
    assert pred({"name": {"nested": "a"}}) is False


@pytest.mark.parametrize("path", ["empty", "nulls", "deep", "people.name"])
def test_exists_means_a_non_null_value_so_empty_lists_do_not_exist(path: str) -> None:
    # docs/engine.md: a path ending on a list has its elements as values, and
    # exists holds when the path reaches at least one non-null value.
    fields = {"empty": [], "nulls": [None, None], "deep": [[], [None]], "people": []}
    assert compile_node(Condition(path, "exists", True))(fields) is False
    assert compile_node(Condition(path, "exists", False))(fields) is True
