"""Where an app registration's credential comes from: an environment variable or a file
the config names, never the config's own text (the schema refuses a ``client_secret:``
key). Importable without httpx or MSAL: ``airgate executors check`` asks
``Credential.present`` and ``warnings`` without reading a secret's value.

Three forms, exactly one per executor (the schema says so):

- ``client_secret_env: NAME``: the client secret is the variable's value;
- ``client_secret_file: /path``: the file's content, trailing newlines stripped (the
  shape of a Docker or Kubernetes secret mount);
- ``certificate_file: /path`` (a PEM certificate, uploaded to the app registration) with
  ``private_key_file: /path`` (its PEM private key; when absent, the key is read from the
  certificate file, a combined PEM as Key Vault exports it).

A secret is read when a token is needed, so a rotated secret is picked up by the next
token request. A message this module builds names the variable or the file, never what
it holds.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class CredentialError(Exception):
    """The credential cannot be read: the message names where it was looked for."""


@dataclass(frozen=True)
class Secret:
    """A client secret, once read (``repr`` never shows it)."""

    value: str

    def __repr__(self) -> str:
        return "Secret(***)"


@dataclass(frozen=True)
class Certificate:
    """A certificate credential, once read: the private key (PEM) and the certificate's
    SHA-1 thumbprint (hex), which Entra ID matches against the app registration's keys."""

    private_key: str
    thumbprint: str

    def __repr__(self) -> str:
        return f"Certificate(thumbprint={self.thumbprint!r}, private_key=***)"


@dataclass(frozen=True)
class Credential:
    """Where the credential is: ``kind`` is ``secret_env``, ``secret_file`` or
    ``certificate``; ``source`` the variable's name or the file's path."""

    kind: str
    source: str
    key_file: str | None = None  # certificate: where the private key is, when separate

    @property
    def described(self) -> str:
        """Where the credential comes from, for messages and plans (no secret)."""
        if self.kind == "secret_env":
            return f"the environment variable {self.source}"
        if self.kind == "secret_file":
            return f"the file {self.source}"
        key = f", key {self.key_file}" if self.key_file else ""
        return f"the certificate {self.source}{key}"

    @property
    def files(self) -> tuple[str, ...]:
        if self.kind == "secret_env":
            return ()
        return (self.source,) + ((self.key_file,) if self.key_file else ())

    def present(self) -> dict[str, bool]:
        """Each variable or file it reads, and whether it is there (set and non-empty, or
        a readable file); reads no value."""
        if self.kind == "secret_env":
            return {self.source: bool(os.environ.get(self.source, ""))}
        return {path: os.path.isfile(path) and os.access(path, os.R_OK) for path in self.files}

    def problems(self) -> list[str]:
        """Why it cannot be read, for ``executors check`` (empty when it can be)."""
        out = []
        for where, ok in self.present().items():
            if not ok:
                out.append(f"the environment variable {where} is not set"
                           if self.kind == "secret_env" else _file_problem(where))
        return out

    def warnings(self) -> list[str]:
        """A secret or key file that others than its owner may read."""
        out = []
        for path in self.files:
            try:
                mode = os.stat(path).st_mode
            except OSError:
                continue
            if mode & (stat.S_IRGRP | stat.S_IROTH) and not (
                    self.kind == "certificate" and path == self.source and self.key_file):
                out.append(f"{path} is readable by its group or others (chmod 600 it)")
        return out

    def load(self) -> Secret | Certificate:
        """The secret or the certificate, read now; ``CredentialError`` names what is
        missing or unreadable."""
        if self.kind == "secret_env":
            value = os.environ.get(self.source, "")
            if not value:
                raise CredentialError(f"no client secret: the environment variable"
                                      f" {self.source} is not set")
            return Secret(value)
        if self.kind == "secret_file":
            value = _read(self.source, "client secret").rstrip("\r\n")
            if not value.strip():
                raise CredentialError(f"no client secret: the file {self.source} is empty")
            return Secret(value)
        return _certificate(self.source, self.key_file)


def credential_of(options: Mapping[str, Any]) -> Credential:
    """The credential an executor's (schema-checked) options name."""
    if options.get("client_secret_file"):
        return Credential("secret_file", str(options["client_secret_file"]))
    if options.get("certificate_file"):
        key = options.get("private_key_file")
        return Credential("certificate", str(options["certificate_file"]),
                          str(key) if key else None)
    return Credential("secret_env", str(options.get("client_secret_env", "")))


def _file_problem(path: str) -> str:
    if not os.path.exists(path):
        return f"the file {path} does not exist"
    if not os.path.isfile(path):
        return f"{path} is not a file"
    return f"the file {path} cannot be read (permissions)"


def _read(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        raise CredentialError(f"no {what}: the file {path} does not exist") from None
    except PermissionError:
        raise CredentialError(f"no {what}: the file {path} cannot be read"
                              " (permissions)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialError(f"no {what}: the file {path} cannot be read"
                              f" ({type(exc).__name__})") from None


def _certificate(cert_path: str, key_path: str | None) -> Certificate:
    """The private key and the certificate's SHA-1 thumbprint (the ``x5t`` Entra ID
    matches), checked to belong together so a mismatch is named here, not as Entra's
    ``invalid_client``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    cert_text = _read(cert_path, "certificate")
    key_text = _read(key_path, "private key") if key_path else cert_text
    where_key = key_path or cert_path
    try:
        cert = x509.load_pem_x509_certificate(cert_text.encode())
    except ValueError:
        raise CredentialError(f"the file {cert_path} holds no PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(key_text.encode(), password=None)
    except (ValueError, TypeError):
        # TypeError: an encrypted key (no passphrase is configured)
        raise CredentialError(f"the file {where_key} holds no unencrypted PEM private"
                              " key") from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    pem = serialization.Encoding.PEM
    if key.public_key().public_bytes(pem, public) != cert.public_key().public_bytes(pem, public):
        raise CredentialError(f"the private key in {where_key} does not belong to the"
                              f" certificate {cert_path}")
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return Certificate(key_pem, cert.fingerprint(hashes.SHA1()).hex().upper())  # noqa: S303
