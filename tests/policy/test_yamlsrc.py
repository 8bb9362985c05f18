"""The strict YAML loader: positions, and every way hostile input is refused."""

from __future__ import annotations

import re

import pytest

from airgate.errors import InputError
from airgate.policy.yamlsrc import MAX_NODES, decode, iter_documents, load_documents

BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8)
)


def test_positions_of_values_and_keys() -> None:
    doc = load_documents("a: 1\nb:\n  - x\n  - {c: 2}\n", "f.yaml")[0]
    assert doc.data == {"a": 1, "b": ["x", {"c": 2}]}
    assert str(doc.locate(("b", 1, "c"))) == "f.yaml:4:9"
    assert str(doc.locate(("b", 1, "c"), key=True)) == "f.yaml:4:6"
    # A path that is not in the document falls back to its nearest ancestor.
    assert str(doc.locate(("b", 1, "missing"))) == "f.yaml:4:5"


def test_dates_stay_text_and_documents_are_counted() -> None:
    docs = load_documents("---\nexpires: 2027-01-01\n---\n---\nb: 2\n", "f.yaml")
    assert [d.data for d in docs] == [{"expires": "2027-01-01"}, {"b": 2}]
    assert [d.index for d in docs] == [0, 2]


@pytest.mark.parametrize(
    ("text", "message", "where"),
    [
        ("a: 1\na: 2\n", "duplicate key 'a' (first defined on line 1)", "f.yaml:2:1"),
        ("x: !!python/object:os.system {}\n", "tag 'tag:yaml.org,2002:python/object:os.system'"
         " is not allowed", "f.yaml:1:4"),
        ("x: !custom 1\n", "tag '!custom' is not allowed", "f.yaml:1:4"),
        ("a: [1\n", "invalid YAML: expected ',' or ']'", "f.yaml:2:1"),
        ("a: {b: 1}\nc:\n  <<: {d: 1}\n", "merge keys (<<) are not supported", "f.yaml:3:3"),
        ("? [a, b]\n: 1\n", "mapping keys must be plain scalars", "f.yaml:1:3"),
        (BOMB, f"document expands to more than {MAX_NODES} values", "f.yaml:"),
        ("[" * 100 + "]" * 100 + "\n", "nesting deeper than 64 levels", "f.yaml:1:"),
        # Refused while composing, before Python's recursion limit is near.
        ("[" * 20000, "nesting deeper than 64 levels", "f.yaml:1:66"),
        # Python refuses to read integers past 4300 digits: an error, not a traceback.
        ("a: 1\nb: " + "9" * 5000 + "\n", "number with 5000 digits is too long", "f.yaml:2:4"),
    ],
)
def test_hostile_or_broken_yaml_is_refused_with_its_location(
    text: str, message: str, where: str
) -> None:
    with pytest.raises(InputError, match=re.escape(message)) as info:
        load_documents(text, "f.yaml")
    assert str(info.value.location).startswith(where)


@pytest.mark.parametrize(
    ("raw", "message", "where"),
    [
        (b"a: 1\nb: \xff\n", "not valid UTF-8 (byte 0xff)", "f.yaml:2:4"),
        (b"  \n\n", "file is empty", "f.yaml:1:1"),
    ],
)
def test_undecodable_or_empty_input(raw: bytes, message: str, where: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)) as info:
        decode(raw, "f.yaml")
    assert str(info.value.location) == where


def test_utf8_bom_is_accepted() -> None:
    assert decode(b"\xef\xbb\xbfa: 1\n", "f.yaml") == "a: 1\n"


def test_values_are_counted_while_composing_not_after() -> None:
    # Past the bound, the rest of the document is never composed: the error names the
    # first value too many, and an unterminated list after it is never reached.
    text = "a: [" + ", ".join(["1"] * 50) + ", [\n"
    with pytest.raises(InputError, match="document holds more than 20 values") as info:
        list(iter_documents(text, "f.yaml", max_nodes=20))
    assert str(info.value.location) == "f.yaml:1:59"  # the mapping, the list, 19 items
