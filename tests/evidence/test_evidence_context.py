"""What an item learns from its alert or investigation: a local account's device, a URL's source."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from airgate.evidence import graph
from airgate.evidence.reader import iter_evidence, load_evidence
from airgate.model import Evidence
from helpers import evidence_stream

P = "#microsoft.graph.security."


def graph_alert(*items: dict[str, Any], **alert: Any) -> list[Evidence]:
    payload = {"id": alert.pop("id", "alert-1"), **alert, "evidence": list(items)}
    return list(iter_evidence(io.BytesIO(json.dumps(payload).encode())))


def item(subtype: str, **fields: Any) -> dict[str, Any]:
    return {"@odata.type": f"{P}{subtype}Evidence", "verdict": "malicious", **fields}


def device(device_id: str) -> dict[str, Any]:
    return item("device", mdeDeviceId=device_id, deviceDnsName=f"{device_id}.contoso.com")


def user(**account: Any) -> dict[str, Any]:
    return item("user", userAccount=account)


def of_type(found: list[Evidence], entity_type: str) -> list[Evidence]:
    return [e for e in found if e.entity_type == entity_type]


# ---------------------------------------------------------------- local accounts
def test_root_on_two_hosts_is_two_identities() -> None:
    # The case: `user:root` was one key across every host.
    [on_a] = of_type(graph_alert(device("dev-a"), user(accountName="root"), id="a1"), "user")
    [on_b] = of_type(graph_alert(device("dev-b"), user(accountName="root"), id="a2"), "user")
    assert (on_a.key, on_b.key) == ("user:root@dev-a", "user:root@dev-b")
    assert on_a.fields["mdeDeviceId"] == "dev-a"
    assert on_a.name == "root"


@pytest.mark.parametrize(("account", "key"), [
    # well-known accounts are the same name and SID on every host
    ({"accountName": "SYSTEM", "domainName": "NT AUTHORITY", "userSid": "S-1-5-18"},
     "user:NT AUTHORITY\\SYSTEM@dev-a"),
    ({"accountName": "admin", "domainName": "."}, "user:.\\admin@dev-a"),
    ({"userSid": "S-1-5-32-544"}, "user:S-1-5-32-544@dev-a"),
    # a host name as the domain already scopes the account
    ({"accountName": "adminlocal", "domainName": "WS-17"}, "user:WS-17\\adminlocal"),
    # SIDs unique to one account, and Entra identities, never take a device
    ({"accountName": "adminlocal", "domainName": "WS-17",
      "userSid": "S-1-5-21-3623811015-3361044348-30300820-500"},
     "user:S-1-5-21-3623811015-3361044348-30300820-500"),
    ({"accountName": "ann", "userPrincipalName": "Ann@Contoso.com"}, "user:ann@contoso.com"),
    ({"accountName": "ann", "azureAdUserId": "6d1c2f7a-0001"}, "user:6d1c2f7a-0001"),
    ({"accountName": "ann", "domainName": "CONTOSO"}, "user:CONTOSO\\ann"),
])
def test_user_keys_in_an_alert_with_one_device(account: dict[str, Any], key: str) -> None:
    [found] = of_type(graph_alert(device("dev-a"), user(**account)), "user")
    assert found.key == key


def test_entra_users_do_not_take_the_device() -> None:
    [found] = of_type(graph_alert(device("dev-a"), user(userPrincipalName="ann@contoso.com")),
                      "user")
    assert "mdeDeviceId" not in found.fields


def test_a_local_account_with_several_devices_or_none_takes_none() -> None:
    [among_two] = of_type(graph_alert(device("dev-a"), device("dev-b"),
                                      user(accountName="root")), "user")
    [alone] = of_type(graph_alert(user(accountName="root")), "user")
    assert (among_two.key, alone.key) == ("user:root", "user:root")
    assert "mdeDeviceId" not in among_two.fields


def test_a_native_local_account_keeps_its_own_device() -> None:
    found = load_evidence([evidence_stream(
        "apiVersion: airgate/v1\nkind: Investigation\nid: inv-1\nevidence:\n"
        "  - {type: device, verdict: malicious, fields: {mdeDeviceId: dev-a}}\n"
        "  - {type: user, verdict: malicious,\n"
        "     fields: {mdeDeviceId: dev-z, userAccount: {accountName: root}}}\n")])
    assert of_type(found, "user")[0].key == "user:root@dev-z"


def test_the_key_function_alone_names_the_device_from_the_fields() -> None:
    assert graph.identity_key("user", {"userAccount": {"accountName": "root"},
                                       "mdeDeviceId": "d"}) == "user:root@d"
    assert graph.entra_identity({"accountName": "root", "userPrincipalName": " "}) is None


# ---------------------------------------------------------------- URL sources
def test_a_url_takes_its_alerts_service_and_detection_source() -> None:
    [url] = of_type(graph_alert(item("url", url="http://x.example/a"),
                                serviceSource="microsoftDefenderForEndpoint",
                                detectionSource="antivirus"), "url")
    assert (url.fields["serviceSource"], url.fields["detectionSource"]) == (
        "microsoftDefenderForEndpoint", "antivirus")
    assert "networkMessageIds" not in url.fields
    assert url.key == "url:http://x.example/a"


def test_a_url_an_analyzed_message_lists_names_the_messages() -> None:
    found = graph_alert(
        item("analyzedMessage", networkMessageId="m-1", urls=["https://a.example/x"]),
        item("analyzedMessage", networkMessageId="m-2",
             urls=["https://a.example/x", "https://b.example/"]),
        item("url", url="https://a.example/x"), item("url", url="https://c.example/"))
    listed, unlisted = of_type(found, "url")
    assert listed.fields["networkMessageIds"] == ["m-1", "m-2"]
    assert "networkMessageIds" not in unlisted.fields


def test_native_urls_learn_from_messages_and_their_own_fields_win() -> None:
    found = load_evidence([evidence_stream(
        "apiVersion: airgate/v1\nkind: Investigation\nid: inv-1\nevidence:\n"
        "  - {type: analyzedMessage, verdict: malicious,\n"
        "     fields: {networkMessageId: m-1, urls: ['https://a.example/x']}}\n"
        "  - {type: url, verdict: malicious, fields: {url: 'https://a.example/x'}}\n"
        "  - {type: url, verdict: malicious,\n"
        "     fields: {url: 'https://b.example/', serviceSource: microsoftDefenderForOffice365,\n"
        "              networkMessageIds: [m-9]}}\n")])
    first, second = of_type(found, "url")
    assert first.fields == {"url": "https://a.example/x", "networkMessageIds": ["m-1"]}
    assert second.fields["networkMessageIds"] == ["m-9"]
    assert "detectionSource" not in second.fields


# ---------------------------------------------------------------- incidents
def graph_incident(*alerts: dict[str, Any]) -> list[Evidence]:
    payload = {"id": "inc-9", "@odata.type": "#microsoft.graph.security.incident",
               "alerts": list(alerts)}
    return list(iter_evidence(io.BytesIO(json.dumps(payload).encode())))


def test_an_incident_tells_each_item_what_its_own_alert_could_not() -> None:
    # The message listing the URL is in one alert, the URL in another; the local account's
    # only device is in a third. Each alert keeps its own service source.
    found = graph_incident(
        {"id": "a-mail", "serviceSource": "microsoftDefenderForOffice365",
         "evidence": [item("analyzedMessage", networkMessageId="m-1",
                           urls=["http://evil.example/x"])]},
        {"id": "a-url", "serviceSource": "microsoftDefenderForEndpoint",
         "evidence": [item("url", url="http://evil.example/x")]},
        {"id": "a-host", "evidence": [device("dev-a"), user(accountName="root")]},
    )
    [url] = of_type(found, "url")
    assert url.fields["networkMessageIds"] == ["m-1"]
    assert url.fields["serviceSource"] == "microsoftDefenderForEndpoint"
    [account] = of_type(found, "user")
    assert account.key == "user:root@dev-a"
    assert {e.investigation for e in found} == {"inc-9"}
