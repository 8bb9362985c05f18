"""Conditions compiled to fast predicates over ``Evidence.fields``, and their explanation.

Semantics (docs/engine.md is the reference):

* A dotted path walks nested mappings; a list met on the way fans out, and a
  list at the end is a list of values. Null values count as missing.
* ``eq``/``in`` compare strings case-insensitively, numbers numerically and
  booleans with booleans only; values of different kinds are never equal.
  ``ne``/``not_in`` are the exact negations of ``eq``/``in`` (true when missing).
* ``gt``/``gte``/``lt``/``lte`` compare numbers; numeric strings count.
* ``glob``: case-insensitive, ``/`` and ``\\`` alike, ``*`` crosses separators.
* ``regex``: ``re.search`` as written. ``contains``: an element of a list that
  ``eq`` the value, or a case-insensitive substring of a string.
* ``cidr``: an IP address string inside one of the networks.
* Inside one ``all`` branch, the value-testing conditions (eq, in, comparisons,
  glob, regex, cidr) on the same path must hold for the *same* value: with a
  list field ``[6, 2]``, ``gt: 5`` and ``lt: 3`` together do not match.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from airgate.errors import Location
from airgate.model import AllOf, AnyOf, Condition, Node, NotOf

Predicate = Callable[[Mapping[str, Any]], bool]
Test = Callable[[Any], bool]

# Operators that test one value at a time; grouped per path inside an all-branch.
ELEMENT_OPS = frozenset({"eq", "in", "gt", "gte", "lt", "lte", "glob", "regex", "cidr"})
# Operators that are true when the field is missing.
NEGATIVE_OPS = frozenset({"ne", "not_in"})

_NUMBER = re.compile(r"^\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*$")


def to_number(value: Any) -> float | int | None:
    """The number a value stands for: numbers and numeric strings; never a bool."""
    kind = type(value)
    if kind is int or kind is float:
        return value if kind is int or math.isfinite(value) else None
    if kind is str and _NUMBER.match(value):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def value_key(value: Any) -> tuple[str, Any] | None:
    """Equality class of a policy value under ``eq`` (None: equals nothing)."""
    kind = type(value)
    if kind is str:
        return ("s", value.casefold())
    if kind is bool:
        return ("b", value)
    if kind is int or kind is float:
        return ("n", value)
    return None


# ---------------------------------------------------------------- paths
def _walk(node: Any, parts: tuple[str, ...], i: int, out: list[Any]) -> None:
    while i < len(parts):
        if isinstance(node, list):
            for item in node:
                _walk(item, parts, i, out)
            return
        if not isinstance(node, Mapping):
            return
        node = node.get(parts[i])
        i += 1
    if node is not None:
        out.append(node)


def leaves(fields: Mapping[str, Any], path: str) -> list[Any]:
    """Every non-null value the path reaches (lists on the way fan out; a final list stays)."""
    out: list[Any] = []
    _walk(fields, tuple(path.split(".")), 0, out)
    return out


def _elements(values: Any) -> Iterator[Any]:
    """The values themselves, lists (of lists...) expanded."""
    for value in values:
        if isinstance(value, list):
            yield from _elements(value)
        elif value is not None:
            yield value


def _has_value(leaves: Any) -> bool:
    """Whether the leaves hold one non-null value: ``[]`` and ``[null]`` hold none."""
    return any(type(leaf) is not list or next(_elements(leaf), None) is not None
               for leaf in leaves)


def _leaves_getter(path: str) -> Callable[[Mapping[str, Any]], Any]:
    """A fast getter returning a list of leaves; one-step paths skip the walker."""
    parts = tuple(path.split("."))
    if len(parts) == 1:
        key = parts[0]

        def one(fields: Mapping[str, Any]) -> Any:
            value = fields.get(key)
            return () if value is None else (value,)

        return one

    def many(fields: Mapping[str, Any]) -> Any:
        out: list[Any] = []
        _walk(fields, parts, 0, out)
        return out

    return many


# ---------------------------------------------------------------- value tests
def _equality_test(values: list[Any]) -> Test:
    strs = frozenset(v.casefold() for v in values if type(v) is str)
    nums = frozenset(v for v in values if type(v) in (int, float))
    bools = frozenset(v for v in values if type(v) is bool)

    def test(v: Any) -> bool:
        kind = type(v)
        if kind is str:
            return v.casefold() in strs
        if kind is bool:
            return v in bools
        if kind is int or kind is float:
            return v in nums
        return False

    return test


def _compare_test(op: str, bound: float) -> Test:
    if op == "gt":
        return lambda v: (n := to_number(v)) is not None and n > bound
    if op == "gte":
        return lambda v: (n := to_number(v)) is not None and n >= bound
    if op == "lt":
        return lambda v: (n := to_number(v)) is not None and n < bound
    return lambda v: (n := to_number(v)) is not None and n <= bound


def glob_regex(pattern: str) -> re.Pattern[str]:
    """The compiled form of a glob: case-insensitive, backslashes read as slashes."""
    return re.compile(fnmatch.translate(pattern.replace("\\", "/")), re.IGNORECASE)


def _networks(value: Any) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    return [ipaddress.ip_network(str(item).strip(), strict=False) for item in items]


def element_test(op: str, value: Any) -> Test:
    """The per-value test of an element operator."""
    if op == "eq":
        return _equality_test([value])
    if op == "in":
        return _equality_test(list(value))
    if op in ("gt", "gte", "lt", "lte"):
        return _compare_test(op, value)
    if op == "glob":
        match = glob_regex(value).match
        return lambda v: type(v) is str and match(v.replace("\\", "/")) is not None
    if op == "regex":
        search = re.compile(value).search
        return lambda v: type(v) is str and search(v) is not None
    if op == "cidr":
        nets = _networks(value)

        def in_network(v: Any) -> bool:
            if type(v) is not str:
                return False
            try:
                address = ipaddress.ip_address(v.strip())
            except ValueError:
                return False
            return any(address in net for net in nets)

        return in_network
    raise ValueError(f"not an element operator: {op}")


def _contains_test(value: Any) -> Test:
    equal = _equality_test([value])
    needle = value.casefold() if type(value) is str else None

    def test(leaf: Any) -> bool:
        if isinstance(leaf, list):
            return any(equal(item) for item in leaf)
        return needle is not None and type(leaf) is str and needle in leaf.casefold()

    return test


# ---------------------------------------------------------------- compile
def _any_element(get: Callable[[Mapping[str, Any]], Any], tests: tuple[Test, ...]) -> Predicate:
    """True when one value reached by the path passes every test."""
    if len(tests) == 1:
        test = tests[0]

        def single(fields: Mapping[str, Any]) -> bool:
            for leaf in get(fields):
                if type(leaf) is list:
                    if any(test(item) for item in _elements(leaf)):
                        return True
                elif test(leaf):
                    return True
            return False

        return single

    def joint(fields: Mapping[str, Any]) -> bool:
        return any(all(t(v) for t in tests) for v in _elements(get(fields)))

    return joint


def compile_condition(cond: Condition) -> Predicate:
    """One condition as a predicate over evidence fields."""
    get = _leaves_getter(cond.field)
    op = cond.op
    if op in ELEMENT_OPS:
        return _any_element(get, (element_test(op, cond.value),))
    if op in NEGATIVE_OPS:
        positive = _any_element(get, (element_test("eq" if op == "ne" else "in", cond.value),))
        return lambda fields: not positive(fields)
    if op == "exists":
        if cond.value:
            return lambda fields: _has_value(get(fields))
        return lambda fields: not _has_value(get(fields))
    if op == "contains":
        test = _contains_test(cond.value)
        return lambda fields: any(test(leaf) for leaf in get(fields))
    raise ValueError(f"unknown operator {op!r}")


def flatten_all(nodes: tuple[Node, ...]) -> list[Node]:
    """The members of an all-branch, nested all-branches spliced in."""
    out: list[Node] = []
    for node in nodes:
        if isinstance(node, AllOf):
            out.extend(flatten_all(node.items))
        else:
            out.append(node)
    return out


def compile_node(node: Node) -> Predicate:
    """A condition tree as one predicate; see the module docstring for the semantics."""
    if isinstance(node, Condition):
        return compile_condition(node)
    if isinstance(node, NotOf):
        inner = compile_node(node.item)
        return lambda fields: not inner(fields)
    if isinstance(node, AnyOf):
        parts = tuple(compile_node(n) for n in node.items)
        if len(parts) == 1:
            return parts[0]
        return lambda fields: any(p(fields) for p in parts)
    return _compile_all(flatten_all(node.items))


def _compile_all(members: list[Node]) -> Predicate:
    grouped: dict[str, list[Condition]] = {}
    preds: list[Predicate] = []
    for member in members:
        if isinstance(member, Condition) and member.op in ELEMENT_OPS:
            grouped.setdefault(member.field, []).append(member)
        else:
            preds.append(compile_node(member))
    for path, conds in grouped.items():
        tests = tuple(element_test(c.op, c.value) for c in conds)
        preds.insert(0, _any_element(_leaves_getter(path), tests))
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        first, second = preds
        return lambda fields: first(fields) and second(fields)
    frozen = tuple(preds)
    return lambda fields: all(p(fields) for p in frozen)


# ---------------------------------------------------------------- explanation
@dataclass(frozen=True)
class ConditionTrace:
    """One node of a condition tree evaluated on one evidence item."""

    kind: str  # "condition", "all", "any", "not"
    held: bool
    depth: int
    field: str | None = None
    op: str | None = None
    expected: Any = None
    actual: Any = None  # the value(s) the path reached; None when missing
    location: Location | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "held": self.held, "depth": self.depth}
        if self.kind == "condition":
            out.update(field=self.field, op=self.op, value=self.expected, actual=self.actual)
        if self.location is not None and self.location.line is not None:
            out["line"] = self.location.line
        return out


def trace_node(node: Node, fields: Mapping[str, Any], depth: int = 0) -> list[ConditionTrace]:
    """Each node of the tree with the value it saw and whether it held, pre-order."""
    held = compile_node(node)(fields)
    if isinstance(node, Condition):
        found = leaves(fields, node.field)
        actual = None if not found else found[0] if len(found) == 1 else found
        return [ConditionTrace("condition", held, depth, node.field, node.op, node.value,
                               actual, node.location)]
    if isinstance(node, NotOf):
        children = trace_node(node.item, fields, depth + 1)
        return [ConditionTrace("not", held, depth, location=node.location), *children]
    items = node.items
    out = [ConditionTrace("all" if isinstance(node, AllOf) else "any", held, depth,
                          location=node.location)]
    for item in items:
        out.extend(trace_node(item, fields, depth + 1))
    return out
