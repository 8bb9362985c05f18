"""The catalog of remediation actions (DOMAIN.md), as data inside the package."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

Category = Literal["email", "device", "identity", "custom"]

GLOBAL_ADMIN = "global-admin"
SECURITY_ADMIN = "security-admin"
SEARCH_AND_PURGE = "search-and-purge"
ACTIVE_REMEDIATION = "active-remediation"
BUILTIN_ROLES = (GLOBAL_ADMIN, SECURITY_ADMIN, SEARCH_AND_PURGE, ACTIVE_REMEDIATION)

DEFAULT_APPROVER = {
    "email": SEARCH_AND_PURGE,
    "device": ACTIVE_REMEDIATION,
    "identity": SECURITY_ADMIN,
    "custom": SECURITY_ADMIN,
}

# Graph evidence subtypes without the "Evidence" suffix, plus airgate's own
# service, driver and scheduledTask (no Graph type exists for them).
GRAPH_ENTITY_TYPES = (
    "analyzedMessage",
    "amazonResource",
    "azureResource",
    "blob",
    "blobContainer",
    "cloudApplication",
    "cloudLogonRequest",
    "cloudLogonSession",
    "container",
    "containerImage",
    "containerRegistry",
    "device",
    "dns",
    "file",
    "gitHubOrganization",
    "gitHubRepo",
    "gitHubUser",
    "googleCloudResource",
    "hostLogonSession",
    "ioTDevice",
    "ip",
    "kubernetesCluster",
    "kubernetesController",
    "kubernetesNamespace",
    "kubernetesPod",
    "kubernetesSecret",
    "kubernetesService",
    "kubernetesServiceAccount",
    "mailbox",
    "mailboxConfiguration",
    "mailCluster",
    "malware",
    "networkConnection",
    "nic",
    "oauthApplication",
    "process",
    "registryKey",
    "registryValue",
    "sasToken",
    "securityGroup",
    "servicePrincipal",
    "submissionMail",
    "teamsMessage",
    "url",
    "user",
)
NATIVE_ENTITY_TYPES = ("service", "driver", "scheduledTask")
ENTITY_TYPES = frozenset(GRAPH_ENTITY_TYPES + NATIVE_ENTITY_TYPES)

# Entity types that live on a device: their approval follows the device group's
# automation level.
DEVICE_SIDE_TYPES = frozenset(
    {
        "device",
        "file",
        "process",
        "registryKey",
        "registryValue",
        "service",
        "driver",
        "scheduledTask",
    }
)


@dataclass(frozen=True)
class Undo:
    """How an action is undone."""

    action: str  # the inverse operation, e.g. release_from_isolation
    display_name: str
    bulk_by_hash: bool = False  # undo may cover every instance of the same file
    requires_role: str | None = None  # beyond the approver roles


@dataclass(frozen=True)
class ActionSpec:
    id: str
    display_name: str
    category: Category
    targets: frozenset[str]
    undo: Undo | None = None
    approver_role: str = SECURITY_ADMIN
    # Email actions have no undo; they are changed by an opposite move.
    change_to: tuple[str, ...] = ()
    custom: bool = False
    description: str = ""

    @property
    def undoable(self) -> bool:
        return self.undo is not None

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "display_name": self.display_name,
            "category": self.category,
            "targets": sorted(self.targets),
            "undoable": self.undoable,
            "undo": None
            if self.undo is None
            else {
                "action": self.undo.action,
                "display_name": self.undo.display_name,
                "bulk_by_hash": self.undo.bulk_by_hash,
                "requires_role": self.undo.requires_role,
            },
            "change_to": list(self.change_to),
            "approver_role": self.approver_role,
            "custom": self.custom,
        }


_MESSAGES = frozenset({"analyzedMessage", "mailCluster"})


def _email(
    id: str, name: str, targets: frozenset[str], change_to: tuple[str, ...] = ()
) -> ActionSpec:
    return ActionSpec(id, name, "email", targets, None, SEARCH_AND_PURGE, change_to)


def _device(id: str, name: str, targets: set[str], undo: Undo | None = None) -> ActionSpec:
    return ActionSpec(id, name, "device", frozenset(targets), undo, ACTIVE_REMEDIATION)


def _identity(id: str, name: str, undo: Undo | None = None) -> ActionSpec:
    return ActionSpec(id, name, "identity", frozenset({"user"}), undo, SECURITY_ADMIN)


_BUILTIN = (
    # Email & collaboration: all wait for approval in Defender; no undo, only a new move.
    _email(
        "soft_delete_email", "Soft delete email", frozenset({"analyzedMessage"}), ("move_to_inbox",)
    ),
    _email(
        "soft_delete_email_cluster",
        "Soft delete email cluster",
        frozenset({"mailCluster"}),
        ("move_to_inbox",),
    ),
    _email("hard_delete_email", "Hard delete email", _MESSAGES),
    _email("move_to_junk", "Move to junk folder", _MESSAGES, ("move_to_inbox",)),
    _email(
        "move_to_inbox",
        "Move to inbox",
        _MESSAGES,
        ("move_to_junk", "move_to_deleted_items", "soft_delete_email"),
    ),
    _email("move_to_deleted_items", "Move to deleted items", _MESSAGES, ("move_to_inbox",)),
    _email("block_url", "Block URL (time-of-click)", frozenset({"url"})),
    _email(
        "turn_off_external_forwarding",
        "Turn off external mail forwarding",
        frozenset({"mailbox", "mailboxConfiguration"}),
    ),
    _email("remove_delegation", "Remove delegation", frozenset({"mailboxConfiguration"})),
    # Devices and files.
    _device(
        "isolate_device",
        "Isolate device",
        {"device"},
        Undo("release_from_isolation", "Release from isolation"),
    ),
    _device(
        "restrict_code_execution",
        "Restrict app execution",
        {"device"},
        Undo("remove_code_restriction", "Remove app restriction"),
    ),
    _device(
        "contain_device",
        "Contain device",
        {"device"},
        Undo("release_device_containment", "Release from containment"),
    ),
    _device("run_antivirus_scan", "Run antivirus scan", {"device"}),
    _device("collect_investigation_package", "Collect investigation package", {"device"}),
    _device("offboard_device", "Offboard device", {"device"}),
    _device(
        "quarantine_file",
        "Quarantine file",
        {"file"},
        Undo("restore_file", "Restore file from quarantine", bulk_by_hash=True),
    ),
    _device(
        "stop_and_quarantine_file",
        "Stop and quarantine file",
        {"file", "process"},
        Undo("restore_file", "Restore file from quarantine", bulk_by_hash=True),
    ),
    _device("kill_process", "Kill process", {"process"}),
    _device("stop_service", "Stop service", {"service"}, Undo("start_service", "Start service")),
    _device("disable_driver", "Disable driver", {"driver"}, Undo("enable_driver", "Enable driver")),
    _device(
        "remove_scheduled_task",
        "Remove scheduled task",
        {"scheduledTask"},
        Undo("restore_scheduled_task", "Restore scheduled task"),
    ),
    _device(
        "remove_registry_key",
        "Remove registry key",
        {"registryKey", "registryValue"},
        Undo("restore_registry_key", "Restore registry key"),
    ),
    # Identity.
    _identity("disable_user", "Disable user", Undo("enable_user", "Enable user")),
    _identity(
        "contain_user",
        "Contain user",
        Undo(
            "release_user_containment", "Release user from containment", requires_role=GLOBAL_ADMIN
        ),
    ),
    _identity("force_password_reset", "Force password reset"),
    _identity("revoke_sessions", "Revoke sessions"),
    _identity("mark_user_compromised", "Mark user as compromised"),
)

BUILTIN_ACTIONS: Mapping[str, ActionSpec] = MappingProxyType({a.id: a for a in _BUILTIN})


@dataclass(frozen=True)
class Catalog:
    """The built-in actions plus the custom ones a policy set declares."""

    actions: Mapping[str, ActionSpec] = field(default_factory=lambda: BUILTIN_ACTIONS)

    def get(self, action_id: str) -> ActionSpec | None:
        return self.actions.get(action_id)

    def with_custom(self, specs: list[ActionSpec]) -> Catalog:
        merged = dict(self.actions)
        merged.update({s.id: s for s in specs})
        return Catalog(MappingProxyType(merged))

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(sorted(self.actions.values(), key=lambda a: (a.category, a.id)))


DEFAULT_CATALOG = Catalog()
