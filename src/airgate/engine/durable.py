"""The same compiled policy matched by durable-rules, to check airgate's own matcher.

durable-rules identifies property names and message ids by a 32-bit FNV-1a
hash and fires one rule per *event*, so this matcher:

* posts only property names it generates (``v``, ``t``, ``a``, ``b<i>``,
  ``k<i>``, ``n<i>``), never evidence field names, and checks at compile time
  that none of them share a hash;
* asserts each evidence item as a *fact* (every matching rule fires on a fact,
  unlike an event), under a fresh session id, and deletes that session before
  returning, so nothing survives from one item to the next;
* lets durable's own conditions decide the verdict, the entity type, the
  and/or/not structure of every ``where`` and the numeric comparisons; only
  the other leaf tests (equality, glob, regex, cidr, contains, exists, and
  the same-value groups of one ``all`` branch) arrive precomputed as 0/1,
  computed by :mod:`airgate.conditions` exactly as the indexed engine does.

Each compiled policy gets its own ruleset (a unique name), deleted when the
matcher is garbage-collected or :meth:`DurableMatcher.close` is called.
"""

from __future__ import annotations

import itertools
import json
import math
import threading
import uuid
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import durable_rules_engine as _dre  # type: ignore[import-not-found]
from durable.lang import m as _m

from airgate.engine.conditions import (
    ELEMENT_OPS,
    compile_condition,
    compile_node,
    flatten_all,
    leaves,
    to_number,
)
from airgate.errors import AirgateError
from airgate.model import VERDICTS, AllOf, AnyOf, Condition, Node, NotOf

if TYPE_CHECKING:
    from airgate.engine.compiled import CompiledPolicy
    from airgate.engine.decide import CompiledExclusion, CompiledRule

_COMPARISONS = {"gt": "__gt__", "gte": "__ge__", "lt": "__lt__", "lte": "__le__"}
_NEGATED = {"gt": "lte", "gte": "lt", "lt": "gte", "lte": "gt"}
# Numbers durable-rules parses and compares exactly (it rejects 1e300, loses
# precision on big integers); others go to durable precomputed.
_SAFE_INT = 2**53
_SAFE_FLOAT = 1e15
_SERIAL = itertools.count()
_LOCK = threading.Lock()  # the C engine is not documented as thread-safe


def fnv1a_32(text: str) -> int:
    """The hash durable-rules gives property names and message ids."""
    h = 0x811C9DC5
    for byte in text.encode("utf-8"):
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


def _durable_safe(number: float | int) -> bool:
    if isinstance(number, int):
        return -_SAFE_INT < number < _SAFE_INT
    return math.isfinite(number) and abs(number) < _SAFE_FLOAT and "e" not in repr(number)


class _Leaf:
    """One test whose outcome durable receives: a 0/1 flag, or a number it compares."""

    def __init__(self, index: int, predicate: Callable[[Mapping[str, Any]], bool],
                 numeric: Condition | None):
        self.index = index
        self.predicate = predicate
        self.numeric = numeric  # a lone comparison durable can run itself

    def post(self, fields: Mapping[str, Any], out: dict[str, Any]) -> None:
        i = self.index
        cond = self.numeric
        if cond is not None:
            numbers = [n for n in (to_number(v) for v in _elements(leaves(fields, cond.field)))
                       if n is not None]
            if numbers:
                # "some value > bound" is "the largest value > bound"
                best = max(numbers) if cond.op in ("gt", "gte") else min(numbers)
                if _durable_safe(best):
                    out[f"k{i}"] = 1
                    out[f"n{i}"] = best
                    return
        out[f"k{i}"] = 0
        out[f"b{i}"] = 1 if self.predicate(fields) else 0

    def expression(self, negate: bool) -> Any:
        i = self.index
        flag = getattr(_m, f"b{i}") == (0 if negate else 1)
        cond = self.numeric
        if cond is None:
            return flag
        op = _NEGATED[cond.op] if negate else cond.op
        compare = getattr(getattr(_m, f"n{i}"), _COMPARISONS[op])(cond.value)
        return ((getattr(_m, f"k{i}") == 1) & compare) | ((getattr(_m, f"k{i}") == 0) & flag)


def _elements(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if type(value) is list:
            out.extend(v for v in value if v is not None)
        else:
            out.append(value)
    return out


class _Translator:
    """Turns condition trees into durable expressions, collecting the leaves to post."""

    def __init__(self) -> None:
        self.leaves: list[_Leaf] = []
        self._by_key: dict[str, _Leaf] = {}
        self.numeric = True  # False: comparisons arrive precomputed too

    def leaf(self, key: str, predicate: Callable[[Mapping[str, Any]], bool],
             numeric: Condition | None = None) -> _Leaf:
        found = self._by_key.get(key)
        if found is None:
            found = self._by_key[key] = _Leaf(len(self.leaves), predicate, numeric)
            self.leaves.append(found)
        return found

    def condition(self, cond: Condition) -> _Leaf:
        numeric = None
        if self.numeric and cond.op in _COMPARISONS and isinstance(cond.value, int | float) \
                and not isinstance(cond.value, bool) and _durable_safe(cond.value):
            numeric = cond
        key = repr((cond.field, cond.op, cond.value, numeric is not None))
        return self.leaf(key, compile_condition(cond), numeric)

    def node(self, node: Node, negate: bool = False) -> Any:
        """A durable expression for ``node`` (or its negation, pushed down to the leaves:
        durable has no ``not`` inside one message's condition)."""
        if isinstance(node, Condition):
            return self.condition(node).expression(negate)
        if isinstance(node, NotOf):
            return self.node(node.item, not negate)
        if isinstance(node, AnyOf):
            return self._join([self.node(n, negate) for n in node.items], or_=not negate)
        # Same-path value tests of one all-branch must hold for one value: airgate's
        # conditions module groups them; keep each group as one leaf.
        parts: list[Any] = []
        grouped: dict[str, list[Condition]] = {}
        for member in flatten_all(node.items):
            if isinstance(member, Condition) and member.op in ELEMENT_OPS:
                grouped.setdefault(member.field, []).append(member)
            else:
                parts.append(self.node(member, negate))
        for path, conds in grouped.items():
            if len(conds) == 1:
                parts.append(self.condition(conds[0]).expression(negate))
            else:
                group = AllOf(tuple(conds))
                key = repr(("group", path, [(c.op, c.value) for c in conds]))
                parts.append(self.leaf(key, compile_node(group)).expression(negate))
        return self._join(parts, or_=negate)

    @staticmethod
    def _join(parts: list[Any], *, or_: bool) -> Any:
        result = parts[0]
        for part in parts[1:]:
            result = (result | part) if or_ else (result & part)
        return result


def _flatten(expr: Any) -> Any:
    """Splice ``$and`` into ``$and`` and ``$or`` into ``$or``: durable-rules refuses
    expressions nested beyond a small depth (error 113)."""
    if isinstance(expr, dict) and len(expr) == 1:
        ((op, arg),) = expr.items()
        if op in ("$and", "$or"):
            out: list[Any] = []
            for part in (_flatten(a) for a in arg):
                if isinstance(part, dict) and list(part) == [op]:
                    out.extend(part[op])
                else:
                    out.append(part)
            return {op: out}
    return expr


def _accepted(name: str, rule: dict[str, Any]) -> bool:
    with _LOCK:
        try:
            handle = _dre.create_ruleset(f"probe_{uuid.uuid4().hex}", json.dumps({name: rule}))
        except _dre.error:
            return False
        _dre.delete_ruleset(handle)
    return True


def _rule_definition(translator: _Translator, head: Any, where: Node | None,
                     name: str) -> dict[str, Any]:
    """The durable rule for a head (verdict, type) and a condition tree.

    Where durable-rules refuses the expression as too deep, numeric comparisons
    arrive precomputed instead; failing that, the whole tree as one flag.
    """
    if where is None:
        return {"all": [{"m": _flatten(head.define())}]}
    for numeric in (True, False):
        translator.numeric = numeric
        rule = {"all": [{"m": _flatten((head & translator.node(where)).define())}]}
        translator.numeric = True
        if _accepted(name, rule):
            return rule
    whole = translator.leaf(repr(("tree", where)), compile_node(where))
    return {"all": [{"m": _flatten((head & whole.expression(False)).define())}]}


def _one_of(prop: str, codes: list[int]) -> Any:
    expr = getattr(_m, prop) == codes[0]
    for code in codes[1:]:
        expr = expr | (getattr(_m, prop) == code)
    return expr


class DurableMatcher:
    """Matches evidence with durable-rules; same interface as the indexed matcher."""

    def __init__(self, compiled: CompiledPolicy):
        entries: list[CompiledRule | CompiledExclusion] = [*compiled.rules, *compiled.exclusions]
        self._targets = entries
        self._n_rules = len(compiled.rules)
        self._verdicts = {v: i + 1 for i, v in enumerate(VERDICTS)}
        # Action rules apply only to their action's targets (the engine narrows
        # their types); an exclusion's types are its own, empty meaning any.
        wanted: list[frozenset[str] | None] = [c.entity_types for c in compiled.rules]
        wanted += [c.rule.entity_types or None for c in compiled.exclusions]
        types = sorted({t for ts in wanted if ts for t in ts})
        self._types = {t: i + 1 for i, t in enumerate(types)}
        translator = _Translator()
        definition: dict[str, Any] = {}
        for i, entry in enumerate(entries):
            rule = entry.rule
            expr = _m.a == 1
            if rule.verdicts:
                expr = expr & _one_of("v", sorted(self._verdicts[v] for v in rule.verdicts))
            etypes = wanted[i]
            if etypes is not None:
                # An empty set (no target in the rule's types) matches nothing: code -1.
                expr = expr & _one_of("t", sorted(self._types[t] for t in etypes) or [-1])
            definition[f"r{i}"] = _rule_definition(translator, expr, rule.where, f"r{i}")
        # A rule every fact satisfies: durable-rules corrupts memory when it deletes
        # a session whose only fact no rule took (a double free); with this rule
        # every fact is taken, stored, and freed once by delete_state.
        definition["c"] = {"all": [{"m": (_m.a == 1).define()}]}
        self._leaves = translator.leaves
        names = ["sid", "id", "a", "v", "t", "$s"]
        for leaf in self._leaves:
            names += [f"b{leaf.index}", f"k{leaf.index}", f"n{leaf.index}"]
        _check_distinct_hashes(names + list(definition))
        self.ruleset_name = f"airgate_{next(_SERIAL)}_{uuid.uuid4().hex}"
        with _LOCK:
            self._handle = _dre.create_ruleset(self.ruleset_name, json.dumps(definition))
        self._finalizer = weakref.finalize(self, _delete_ruleset, self._handle)
        self._session = itertools.count()

    def close(self) -> None:
        """Free the ruleset now rather than at garbage collection."""
        self._finalizer()

    def message(self, verdict: str, entity_type: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """The flat fact posted for one evidence item: generated names only."""
        out: dict[str, Any] = {"id": "1", "a": 1, "v": self._verdicts.get(verdict, 0),
                               "t": self._types.get(entity_type, 0)}
        for leaf in self._leaves:
            leaf.post(fields, out)
        return out

    def fired(self, fact: dict[str, Any]) -> list[int]:
        """Indexes of every rule durable fires on ``fact``; its session is gone afterwards."""
        sid = f"s{next(self._session)}"
        fact["sid"] = sid
        handle = self._handle
        found: list[int] = []
        with _LOCK:
            code, state = _dre.assert_fact(handle, json.dumps(fact))
            if code != 0:  # cannot happen with the catch-all rule; never delete then
                raise AirgateError(f"durable-rules refused an evidence item (code {code})")
            try:
                result = _dre.start_action_for_state(handle, state)
                while result:
                    fired = json.loads(result[1])
                    found.extend(int(name[1:]) for name in fired if name != "c")
                    _dre.update_state(handle, result[0])
                    following = _dre.complete_and_start_action(handle, state)
                    result = (result[0], following) if following else None
            finally:
                _dre.delete_state(handle, sid)
        return found

    def match(self, ev: Any) -> tuple[list[CompiledRule], list[CompiledExclusion]]:
        # A rule fires once per satisfied branch of an "or": count it once.
        fired = sorted(set(self.fired(self.message(ev.verdict, ev.entity_type, ev.fields))))
        targets = self._targets
        n = self._n_rules
        rules: list[CompiledRule] = [targets[i] for i in fired if i < n]  # type: ignore[misc]
        if not rules:
            return rules, []
        exclusions: list[CompiledExclusion] = [
            targets[i] for i in fired if i >= n]  # type: ignore[misc]
        return rules, exclusions


def _check_distinct_hashes(names: list[str]) -> None:
    seen: dict[int, str] = {}
    for name in names:
        other = seen.setdefault(fnv1a_32(name), name)
        if other != name:
            raise AirgateError(f"durable-rules would confuse {other!r} with {name!r}")


def _delete_ruleset(handle: int) -> None:
    with _LOCK:
        _dre.delete_ruleset(handle)
