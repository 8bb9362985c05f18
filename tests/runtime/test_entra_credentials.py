"""Entra ID tokens through MSAL against the local stand-in: a certificate credential (the
signed client assertion Entra ID checks), a client secret from a file, the token cached
across runs, retries, and every failure named without the secret (MSAL's error paths
included)."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from ms_fake import (
    CLIENT_ID,
    DISCOVERY_PATH,
    SECRET,
    SECRET_ENV,
    TOKEN,
    TOKEN_PATH,
    Answer,
    Fake,
    options,
    serve,
)

from airgate.runtime.config import ExecutorConfig
from airgate.runtime.executors import ExecRequest, ExecResult, make_executor

OID = "87d349ed-44d7-43e1-9a83-5f2406dee5bd"
REVOKE = f"/users/{OID}/revokeSignInSessions"
_CERT: dict[str, bytes] = {}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv(SECRET_ENV, raising=False)
    with serve() as server:
        server.on("POST", REVOKE, Answer(200, {"value": True}))
        yield server


def app_certificate() -> dict[str, bytes]:
    """An RSA key and a self-signed certificate for it, as uploaded to an app (once)."""
    if not _CERT:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "airgate-test-app")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=7)).sign(key, hashes.SHA256()))
        _CERT.update(
            cert=cert.public_bytes(serialization.Encoding.PEM),
            der=cert.public_bytes(serialization.Encoding.DER),
            key=key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption()))
    return _CERT


def private(path: Path, data: bytes | str) -> str:
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    path.chmod(0o600)
    return str(path)


def revoke(fake: Fake, **opts: Any) -> ExecResult:
    executor = make_executor(ExecutorConfig("graph_identity", timeout=10,
                                            options={**options(fake, retries=1), **opts}),
                             records=None)  # type: ignore[arg-type]
    return executor.run(ExecRequest("apply", {"id": 1, "action_type": "revoke_sessions"},
                                    {"type": "user", "key": f"user:{OID}"}, "airgate:1:apply:1",
                                    target={"user_id": OID}))


def no_env(**opts: Any) -> dict[str, Any]:
    return {"client_secret_env": None, **opts}


def test_a_certificate_signs_the_client_assertion_entra_id_checks(tmp_path, fake):
    import jwt
    from cryptography import x509

    pem = app_certificate()
    cert = private(tmp_path / "app.crt", pem["cert"])
    key = private(tmp_path / "app.key", pem["key"])
    done = revoke(fake, **no_env(certificate_file=cert, private_key_file=key))
    assert done.ok, done.message
    [token] = fake.token_calls()
    assert "client_secret" not in token.body
    assert token.body["client_assertion_type"] == (
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    assertion = token.body["client_assertion"]
    # x5t: the certificate's SHA-1 thumbprint, base64url (how Entra ID finds the key;
    # MSAL keeps the padding, Entra ID accepts it)
    x5t = base64.urlsafe_b64encode(hashlib.sha1(pem["der"]).digest()).decode()  # noqa: S324
    assert jwt.get_unverified_header(assertion)["x5t"] == x5t
    public = x509.load_pem_x509_certificate(pem["cert"]).public_key()
    claims = jwt.decode(assertion, public, algorithms=["RS256"],  # type: ignore[arg-type]
                        audience=f"{fake.authority}/contoso.onmicrosoft.com/oauth2/v2.0/token",
                        issuer=CLIENT_ID)
    assert claims["sub"] == CLIENT_ID
    assert pem["key"].decode() not in done.message


def test_a_combined_pem_serves_as_certificate_and_key(tmp_path, fake):
    pem = app_certificate()
    both = private(tmp_path / "app.pem", pem["cert"] + pem["key"])
    assert revoke(fake, **no_env(certificate_file=both)).ok
    assert "client_assertion" in fake.token_calls()[0].body


def test_a_key_of_another_certificate_is_named_before_anything_is_sent(tmp_path, fake):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    cert = private(tmp_path / "app.crt", app_certificate()["cert"])
    key = private(tmp_path / "other.key", other)
    failed = revoke(fake, **no_env(certificate_file=cert, private_key_file=key))
    assert failed.message == f"the private key in {key} does not belong to the certificate {cert}"
    assert fake.seen == []


def test_a_client_secret_file_is_read_with_its_newline_stripped(tmp_path, fake):
    path = private(tmp_path / "secret", SECRET + "\n")
    done = revoke(fake, **no_env(client_secret_file=path))
    assert done.ok, done.message
    assert fake.token_calls()[0].body["client_secret"] == SECRET


@pytest.mark.parametrize("state", ["missing", "empty"])
def test_a_missing_or_empty_secret_file_is_named_and_nothing_is_sent(tmp_path, fake, state):
    path = tmp_path / "secret"
    if state == "empty":
        private(path, "\n")
    failed = revoke(fake, **no_env(client_secret_file=str(path)))
    assert failed.message == (f"no client secret: the file {path} does not exist"
                              if state == "missing" else
                              f"no client secret: the file {path} is empty")
    assert fake.seen == []


def test_msal_reads_the_tenant_discovery_once_and_serves_the_token_from_its_cache(fake,
                                                                                 monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    assert revoke(fake).ok and revoke(fake).ok
    assert [c.path for c in fake.seen if c.path != REVOKE] == [DISCOVERY_PATH, TOKEN_PATH]
    assert len(fake.calls("POST", REVOKE)) == 2


def test_a_throttled_token_request_is_retried_after_retry_after(fake, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    fake.on("POST", TOKEN_PATH, Answer(429, {"error": "temporarily_unavailable"},
                                       {"Retry-After": "0"}),
            Answer(200, {"token_type": "Bearer", "expires_in": 3599, "access_token": TOKEN}))
    done = revoke(fake)
    assert done.ok, done.message
    assert len(fake.token_calls()) == 2


def test_a_token_endpoint_still_failing_after_the_retries_says_so(fake, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    fake.on("POST", TOKEN_PATH, Answer(503, {"error": "temporarily_unavailable",
                                             "error_description": "try later"},
                                       {"Retry-After": "0"}))
    failed = revoke(fake)  # retries=1: two attempts
    assert failed.message == "token request answered 503: temporarily_unavailable: try later"
    assert len(fake.token_calls()) == 2 and fake.calls("POST", REVOKE) == []


@pytest.mark.parametrize("how", ["secret_env", "secret_file"])
def test_invalid_client_is_named_and_the_echoed_secret_is_masked(tmp_path, fake, monkeypatch,
                                                                 how):
    # Entra ID's refusal, echoing the secret as a broken or hostile server might
    fake.on("POST", TOKEN_PATH, Answer(401, {
        "error": "invalid_client", "error_codes": [7000215],
        "error_description": f"AADSTS7000215: Invalid client secret provided: {SECRET}"}))
    if how == "secret_env":
        monkeypatch.setenv(SECRET_ENV, SECRET)
        opts: dict[str, Any] = {}
    else:
        opts = no_env(client_secret_file=private(tmp_path / "s", SECRET))
    failed = revoke(fake, **opts)
    assert failed.message == ("token request answered 401: invalid_client: AADSTS7000215:"
                              " Invalid client secret provided: ***")
    assert fake.calls("POST", REVOKE) == []


def test_a_tenant_discovery_refused_is_a_clear_failure(fake, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    fake.on("GET", DISCOVERY_PATH, Answer(400, {"error": "invalid_tenant",
                                                "error_description": SECRET}))
    failed = revoke(fake)
    assert failed.message == (f"tenant discovery ({fake.authority}{DISCOVERY_PATH})"
                              " answered 400")
    assert fake.token_calls() == []


def test_an_http_authority_built_in_code_is_refused_by_msal(fake, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    failed = revoke(fake, authority=fake.url)  # the config schema refuses it earlier
    assert failed.message == (f"the authority {fake.url}/contoso.onmicrosoft.com is not an"
                              " https:// URL with a tenant")
    assert fake.seen == []


def test_a_token_endpoint_answering_no_json_stops_before_msal_logs_it(fake, monkeypatch,
                                                                      caplog):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    fake.on("POST", TOKEN_PATH, Answer(200, raw=f"<html>{SECRET}</html>".encode()))
    failed = revoke(fake)
    assert failed.message == "token request answered 200 with a body that is not JSON"
    assert SECRET not in caplog.text


def test_an_untrusted_authority_certificate_is_a_network_failure(fake, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    failed = revoke(fake, ca_file=None)  # the system's CAs do not know the fake's
    assert failed.message.startswith("tenant discovery (")
    assert failed.message.endswith("network error (ConnectError)")


def test_executors_check_reports_files_without_reading_them(tmp_path):
    from click.testing import CliRunner

    from airgate.cli import main

    secret = private(tmp_path / "secret", SECRET)
    loose = tmp_path / "loose.pem"
    loose.write_text("x")
    os.chmod(loose, 0o644)
    (tmp_path / "airgate.yaml").write_text(
        "executors:\n"
        f"  revoke_sessions: {{type: graph_identity, tenant_id: t, client_id: {CLIENT_ID},"
        f" client_secret_file: {secret}}}\n"
        f"  disable_user: {{type: graph_identity, tenant_id: t, client_id: {CLIENT_ID},"
        f" certificate_file: {loose}}}\n"
        f"  isolate_device: {{type: defender_endpoint, tenant_id: t, client_id: {CLIENT_ID},"
        f" certificate_file: {tmp_path}/app.crt, private_key_file: {tmp_path}/app.key,"
        f" ca_file: {tmp_path}/ca.pem}}\n")
    result = CliRunner().invoke(main, ["executors", "check", "--format", "json", "--config",
                                       str(tmp_path / "airgate.yaml"), "--db",
                                       str(tmp_path / "q.db")])
    assert result.exit_code == 1
    assert SECRET not in result.output
    rows = {r["action_type"]: r for r in json.loads(result.output)["executors"]}
    assert (rows["revoke_sessions"]["secrets"], rows["revoke_sessions"]["ok"]) == (
        {secret: True}, True)
    assert rows["revoke_sessions"]["warnings"] == []
    assert rows["disable_user"]["warnings"] == [
        f"{loose} is readable by its group or others (chmod 600 it)"]
    assert rows["isolate_device"]["problems"] == [
        f"the file {tmp_path}/app.crt does not exist",
        f"the file {tmp_path}/app.key does not exist",
        f"the ca_file {tmp_path}/ca.pem does not exist"]


@pytest.mark.parametrize(("credential", "message"), [
    ("client_secret_env: A, client_secret_file: /run/s",
     "give exactly one of client_secret_env, client_secret_file, certificate_file (the"
     " credential's variable or file, never the secret), not client_secret_env and"
     " client_secret_file"),
    ("authority: 'https://login.microsoftonline.us'",
     "give exactly one of client_secret_env, client_secret_file, certificate_file (the"
     " credential's variable or file, never the secret), not none"),
    ("client_secret_env: A, private_key_file: /run/k", "'certificate_file' is a dependency"),
    ("client_secret_file: run/s", "'run/s' does not match"),
    ("client_secret_env: A, authority: 'http://login.example'", "does not match '^https://"),
    ("client_secret: hunter2", "'client_secret' was unexpected"),
])
def test_a_credential_config_is_checked_with_a_located_error(tmp_path, credential, message):
    from airgate.errors import InputError
    from airgate.runtime.config import load_config

    path = tmp_path / "airgate.yaml"
    path.write_text(f"executors:\n  revoke_sessions: {{type: graph_identity, tenant_id: t,"
                    f" client_id: {CLIENT_ID}, {credential}}}\n")
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("^", r"\^")) as caught:
        load_config(str(path))
    assert caught.value.location is not None and caught.value.location.line == 2
    assert "hunter2" not in str(caught.value)
