"""Synthetic but realistic policies and evidence for the benchmarks (fixed seeds).

One rule list drives everything: it renders as an airgate policy (YAML), as a
plain dict index (the practical limit), and as an equivalent Cedar policy.
The policy uses only operators all three can express (eq, in, glob, gt/gte,
contains, exists, cidr) and evidence values in their canonical case, so that
Cedar's case-sensitive matching agrees with airgate's case-insensitive one.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import json
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

SEED = 20240501

VERDICTS = ("malicious", "suspicious", "noThreatsFound")
GROUPS = ("servers", "workstations", "finance", "domain-controllers", "labs")
DOMAINS = ("contoso.com", "fabrikam.com", "evil.example", "phish.example", "partner.net")
SIGNERS = ("Microsoft Corporation", "Contoso Ltd", "Unknown Publisher")
PATHS = (
    "C:\\Windows\\System32\\drivers\\evil.sys",
    "C:\\Users\\ann\\AppData\\Local\\Temp\\x.exe",
    "C:\\Users\\bob\\Downloads\\invoice.pdf.exe",
    "C:\\Program Files\\App\\app.exe",
    "C:\\Windows\\Temp\\drop.dll",
)
THREATS = ("Phish", "Malware", "Spam", "HighConfPhish")
CONFIG_TYPES = ("mailForwardingRule", "owaSettings", "mailDelegation", "userInboxRule")


@dataclass(frozen=True)
class Cond:
    field: str
    op: str
    value: Any


@dataclass(frozen=True)
class RuleSpec:
    id: str
    effect: str  # action | exclude
    verdicts: tuple[str, ...]
    entity: str
    where: tuple[Cond, ...]
    action: str | None = None
    approval: str = "required"
    actions: tuple[str, ...] = ()  # exclusions: suppressed actions (empty: all)


# entity type -> (actions, condition templates drawn from)
_TEMPLATES: dict[str, tuple[tuple[str, ...], list[Callable[[random.Random], Cond]]]] = {
    "device": (
        ("isolate_device", "run_antivirus_scan", "collect_investigation_package"),
        [
            lambda r: Cond("rbacGroupName", "in", sorted(r.sample(GROUPS, 2))),
            lambda r: Cond("riskScore", "eq", r.choice(("high", "medium"))),
            lambda r: Cond("osPlatform", "eq", r.choice(("Windows10", "Windows11", "Linux"))),
            lambda r: Cond(
                "deviceDnsName", "glob", r.choice(("dc*", "srv-*", "*.lab.contoso.com"))
            ),
        ],
    ),
    "file": (
        ("quarantine_file",),
        [
            lambda r: Cond(
                "fileDetails.filePath",
                "glob",
                r.choice(("C:\\Windows\\*", "*\\Temp\\*", "*\\Downloads\\*")),
            ),
            lambda r: Cond("fileDetails.fileSize", "gt", r.choice((1000, 100000, 5000000))),
            lambda r: Cond("fileDetails.signer", "eq", r.choice(SIGNERS)),
            lambda r: Cond("detectionStatus", "exists", True),
        ],
    ),
    "process": (
        ("kill_process", "stop_and_quarantine_file"),
        [
            lambda r: Cond(
                "imageFile.fileName",
                "in",
                sorted(r.sample(("powershell.exe", "cmd.exe", "rundll32.exe", "mshta.exe"), 2)),
            ),
            lambda r: Cond("processId", "gte", r.choice((100, 1000, 4000))),
        ],
    ),
    "analyzedMessage": (
        ("soft_delete_email", "move_to_junk", "hard_delete_email"),
        [
            lambda r: Cond("deliveryLocation", "eq", r.choice(("inbox", "junkFolder"))),
            lambda r: Cond("threats", "contains", r.choice(THREATS)),
            lambda r: Cond("senderIp", "cidr", r.choice(("203.0.113.0/24", "198.51.100.0/24"))),
            lambda r: Cond("p1Sender.domainName", "in", sorted(r.sample(DOMAINS, 2))),
        ],
    ),
    "mailCluster": (
        ("soft_delete_email_cluster",),
        [
            lambda r: Cond("emailCount", "gte", r.choice((5, 20, 100))),
        ],
    ),
    "url": (
        ("block_url",),
        [
            lambda r: Cond("url", "glob", r.choice(("https://*.evil.example/*", "http://*"))),
        ],
    ),
    "user": (
        ("disable_user", "revoke_sessions", "force_password_reset"),
        [
            lambda r: Cond("userAccount.domainName", "eq", r.choice(("CONTOSO", "FABRIKAM"))),
            lambda r: Cond("userAccount.userPrincipalName", "glob", "admin*"),
        ],
    ),
    "mailboxConfiguration": (
        ("turn_off_external_forwarding", "remove_delegation"),
        [
            lambda r: Cond("configurationType", "eq", r.choice(CONFIG_TYPES)),
        ],
    ),
    "service": (
        ("stop_service",),
        [
            lambda r: Cond("name", "glob", r.choice(("Svc*", "*Update*"))),
        ],
    ),
}
ENTITY_TYPES = tuple(_TEMPLATES)


def make_rules(n: int = 50, seed: int = SEED) -> list[RuleSpec]:
    """``n`` rules: four in five propose an action, one in five is an exclusion."""
    rng = random.Random(seed)
    rules = []
    for i in range(n):
        entity = ENTITY_TYPES[i % len(ENTITY_TYPES)]
        actions, templates = _TEMPLATES[entity]
        picked = rng.sample(templates, rng.randint(1, min(2, len(templates))))
        where = tuple(t(rng) for t in picked)
        if i % 5 == 4:
            rules.append(
                RuleSpec(
                    f"ex-{i:02d}-{entity}",
                    "exclude",
                    (),
                    entity,
                    where,
                    actions=(rng.choice(actions),) if rng.random() < 0.5 else (),
                )
            )
        else:
            verdicts = ("malicious",) if rng.random() < 0.6 else ("malicious", "suspicious")
            rules.append(
                RuleSpec(
                    f"r-{i:02d}-{entity}",
                    "action",
                    verdicts,
                    entity,
                    where,
                    action=rng.choice(actions),
                    approval=rng.choice(("auto", "required")),
                )
            )
    return rules


# ---------------------------------------------------------------- airgate policy
def policy_document(rules: list[RuleSpec]) -> dict[str, Any]:
    out = []
    for r in rules:
        match: dict[str, Any] = {"entity": r.entity}
        if r.verdicts:
            match["verdict"] = list(r.verdicts)
        match["where"] = [{"field": c.field, c.op: c.value} for c in r.where]
        rule: dict[str, Any] = {"id": r.id, "match": match}
        if r.effect == "exclude":
            rule["effect"] = "exclude"
            rule["reason"] = "benchmark exclusion"
            if r.actions:
                rule["actions"] = list(r.actions)
        else:
            rule["action"] = r.action
            rule["approval"] = r.approval
        out.append(rule)
    return {
        "apiVersion": "airgate/v1",
        "kind": "Policy",
        "metadata": {"name": "bench", "description": "synthetic 50-rule benchmark policy"},
        "spec": {"rules": out},
    }


def policy_yaml(rules: list[RuleSpec]) -> str:
    import yaml

    return yaml.safe_dump(policy_document(rules), sort_keys=False)


# ---------------------------------------------------------------- evidence
def _fields(entity: str, rng: random.Random, i: int) -> dict[str, Any]:
    c = rng.choice
    if entity == "device":
        return {
            "mdeDeviceId": f"dev{i:07x}",
            "deviceDnsName": c(("dc01", "srv-web1", "ws7.lab.contoso.com", "laptop9")),
            "rbacGroupName": c(GROUPS),
            "riskScore": c(("high", "medium", "low")),
            "osPlatform": c(("Windows10", "Windows11", "Linux")),
        }
    if entity == "file":
        f: dict[str, Any] = {
            "fileDetails": {
                "sha256": f"{i:064x}",
                "fileName": "x.exe",
                "filePath": c(PATHS),
                "fileSize": rng.randint(10, 10**7),
                "signer": c(SIGNERS),
            },
            "mdeDeviceId": f"dev{i % 997:07x}",
        }
        if rng.random() < 0.5:
            f["detectionStatus"] = c(("detected", "blocked"))
        return f
    if entity == "process":
        return {
            "processId": rng.randint(4, 9000),
            "mdeDeviceId": f"dev{i % 997:07x}",
            "imageFile": {
                "fileName": c(
                    ("powershell.exe", "cmd.exe", "rundll32.exe", "mshta.exe", "notepad.exe")
                ),
                "sha256": f"{i:064x}",
            },
        }
    if entity == "analyzedMessage":
        return {
            "networkMessageId": f"msg-{i}",
            "recipientEmailAddress": f"user{i % 500}@contoso.com",
            "deliveryLocation": c(("inbox", "junkFolder", "quarantine")),
            "threats": rng.sample(THREATS, rng.randint(0, 2)),
            "senderIp": c(("203.0.113.7", "198.51.100.20", "192.0.2.1")),
            "p1Sender": {"emailAddress": "x@" + (d := c(DOMAINS)), "domainName": d},
        }
    if entity == "mailCluster":
        return {
            "clusterBy": "Subject",
            "clusterByValue": f"cl{i}",
            "emailCount": rng.randint(1, 200),
            "query": f"q{i}",
        }
    if entity == "url":
        return {
            "url": c(
                ("https://a.evil.example/x", "http://plain.example/", "https://ok.contoso.com/")
            )
        }
    if entity == "user":
        return {
            "userAccount": {
                "accountName": f"u{i}",
                "domainName": c(("CONTOSO", "FABRIKAM")),
                "userPrincipalName": c(("admin1@contoso.com", "user@contoso.com")),
                "azureAdUserId": f"aad-{i}",
            }
        }
    if entity == "mailboxConfiguration":
        return {
            "configurationType": c(CONFIG_TYPES),
            "mailboxPrimaryAddress": f"m{i}@contoso.com",
            "configurationId": f"cfg{i}",
        }
    return {
        "name": c(("SvcHost", "WinUpdateSvc", "Spooler")),
        "path": "C:\\svc.exe",
        "mdeDeviceId": f"dev{i % 997:07x}",
    }


def evidence_items(n: int, seed: int = SEED) -> Iterator[dict[str, Any]]:
    """``n`` native evidence items (type, verdict, fields)."""
    rng = random.Random(seed + 1)
    for i in range(n):
        entity = rng.choice(ENTITY_TYPES)
        verdict = rng.choices(VERDICTS, (5, 3, 2))[0]
        yield {"type": entity, "verdict": verdict, "fields": _fields(entity, rng, i)}


def investigations(n_items: int, per: int = 10, seed: int = SEED) -> Iterator[dict[str, Any]]:
    """Native investigations of ``per`` items each, ``n_items`` items in all."""
    batch: list[dict[str, Any]] = []
    k = 0
    for item in evidence_items(n_items, seed):
        batch.append(item)
        if len(batch) == per:
            yield {
                "apiVersion": "airgate/v1",
                "kind": "Investigation",
                "id": f"inv-{k:07d}",
                "evidence": batch,
            }
            batch, k = [], k + 1
    if batch:
        yield {
            "apiVersion": "airgate/v1",
            "kind": "Investigation",
            "id": f"inv-{k:07d}",
            "evidence": batch,
        }


def write_ndjson(path: str, n_items: int, seed: int = SEED) -> None:
    with open(path, "w", encoding="utf-8") as out:
        for inv in investigations(n_items, seed=seed):
            out.write(json.dumps(inv, separators=(",", ":")) + "\n")


# ---------------------------------------------------------------- dict index baseline
def _get(fields: dict[str, Any], path: tuple[str, ...]) -> Any:
    v: Any = fields
    for p in path:
        if not isinstance(v, dict):
            return None
        v = v.get(p)
    return v


def _pred(c: Cond) -> Callable[[dict[str, Any]], bool]:
    path = tuple(c.field.split("."))
    op, val = c.op, c.value
    if op == "eq":
        low = val.lower()
        return lambda f: isinstance(x := _get(f, path), str) and x.lower() == low
    if op == "in":
        lows = frozenset(v.lower() for v in val)
        return lambda f: isinstance(x := _get(f, path), str) and x.lower() in lows
    if op == "glob":
        rx = re.compile(fnmatch.translate(val.lower().replace("\\", "/")))
        return lambda f: (
            isinstance(x := _get(f, path), str)
            and rx.match(x.lower().replace("\\", "/")) is not None
        )
    if op in ("gt", "gte"):
        strict = op == "gt"
        return lambda f: (
            isinstance(x := _get(f, path), int | float)
            and not isinstance(x, bool)
            and (x > val if strict else x >= val)
        )
    if op == "contains":
        return lambda f: isinstance(x := _get(f, path), list) and val in x
    if op == "exists":
        return lambda f: _get(f, path) is not None
    if op == "cidr":
        net = ipaddress.ip_network(val)
        return lambda f: isinstance(x := _get(f, path), str) and ipaddress.ip_address(x) in net
    raise ValueError(op)


class DictIndex:
    """The practical limit: rules indexed by (verdict, type), predicates as closures.

    Returns per item the surviving actions with the rules behind them, the same
    matching airgate does, without its records and explanations.
    """

    def __init__(self, rules: list[RuleSpec]):
        self.index: dict[
            tuple[str, str], list[tuple[RuleSpec, list[Callable[[dict[str, Any]], bool]]]]
        ] = {}
        for r in rules:
            preds = [_pred(c) for c in r.where]
            for v in r.verdicts or VERDICTS:
                self.index.setdefault((v, r.entity), []).append((r, preds))

    def match(self, item: dict[str, Any]) -> dict[str, list[str]]:
        fields = item["fields"]
        actions: dict[str, list[str]] = {}
        excluded: list[RuleSpec] = []
        for rule, preds in self.index.get((item["verdict"], item["type"]), ()):
            if all(p(fields) for p in preds):
                if rule.effect == "exclude":
                    excluded.append(rule)
                else:
                    actions.setdefault(rule.action or "", []).append(rule.id)
        for ex in excluded:
            for a in ex.actions or tuple(actions):
                actions.pop(a, None)
        return actions


# ---------------------------------------------------------------- Cedar
def _cedar_path(field: str) -> tuple[str, str]:
    parts = field.split(".")
    guards, expr = [], "context.f"
    for p in parts:
        guards.append(f"{expr} has {p}")
        expr = f"{expr}.{p}"
    return " && ".join(guards), expr


def _cedar_cond(c: Cond) -> str:
    guard, expr = _cedar_path(c.field)
    if c.op == "eq":
        return f"{guard} && {expr} == {json.dumps(c.value)}"
    if c.op == "in":
        return f"{guard} && [{', '.join(json.dumps(v) for v in c.value)}].contains({expr})"
    if c.op == "glob":
        return f"{guard} && {expr} like {json.dumps(c.value)}"
    if c.op in ("gt", "gte"):
        return f"{guard} && {expr} {'>' if c.op == 'gt' else '>='} {int(c.value)}"
    if c.op == "contains":
        return f"{guard} && {expr}.contains({json.dumps(c.value)})"
    if c.op == "exists":
        return guard
    if c.op == "cidr":
        return f"{guard} && ip({expr}).isInRange(ip({json.dumps(c.value)}))"
    raise ValueError(c.op)


def cedar_policies(rules: list[RuleSpec]) -> str:
    """Each rule as a Cedar permit; diagnostics name every rule that matched."""
    out = []
    for r in rules:
        conds = [f"context.type == {json.dumps(r.entity)}"]
        if r.verdicts:
            conds.append(
                "[" + ", ".join(json.dumps(v) for v in r.verdicts) + "].contains(context.verdict)"
            )
        conds += [f"({_cedar_cond(c)})" for c in r.where]
        out.append(
            f'@id("{r.id}")\npermit(principal, action, resource) when {{\n  '
            + " &&\n  ".join(conds)
            + "\n};"
        )
    return "\n\n".join(out)
