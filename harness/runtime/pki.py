"""The environment's PKI: one CA (trustme), serving and client certificates, SA keys.

Everything is written once into `<state>/pki` (private keys 0600) and reused by restarts
and by later attaches, so a kubeconfig handed out stays valid for the environment's life.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

LOCAL_NAMES = ("127.0.0.1", "localhost")


def write_private(path: Path, data: bytes) -> None:
    """Write a file only its owner can read (keys, tokens)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)


@dataclass(frozen=True)
class CertPair:
    cert: Path
    key: Path


class PKI:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.ca_cert = root / "ca.crt"
        self.ca_key = root / "ca.key"
        self._ca: trustme.CA | None = None

    @property
    def exists(self) -> bool:
        return self.ca_cert.exists() and self.ca_key.exists()

    def _authority(self) -> trustme.CA:
        if self._ca is None:
            if self.exists:
                raise RuntimeError("CA exists on disk; issue all certificates at creation")
            self._ca = trustme.CA(organization_name="heracles-harness")
            self.root.mkdir(parents=True, exist_ok=True)
            self._ca.cert_pem.write_to_path(str(self.ca_cert))
            write_private(self.ca_key, self._ca.private_key_pem.bytes())
        return self._ca

    def issue(self, name: str, *identities: str, common_name: str | None = None,
              organization: str | None = None) -> CertPair:
        """A leaf usable for serving and client auth (trustme sets both usages)."""
        ca = self._authority()
        leaf = ca.issue_cert(*(identities or LOCAL_NAMES), common_name=common_name,
                             organization_name=organization)
        pair = CertPair(self.root / f"{name}.crt", self.root / f"{name}.key")
        pair.cert.write_bytes(b"".join(p.bytes() for p in leaf.cert_chain_pems))
        write_private(pair.key, leaf.private_key_pem.bytes())
        return pair

    def pair(self, name: str) -> CertPair:
        return CertPair(self.root / f"{name}.crt", self.root / f"{name}.key")

    @property
    def sa_pair(self) -> CertPair:
        return CertPair(self.root / "sa.pub", self.root / "sa.key")

    def service_account_keys(self) -> CertPair:
        """RSA key pair that signs and verifies ServiceAccount tokens."""
        pair = self.sa_pair
        if not pair.key.exists():
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            write_private(pair.key, key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()))
            pair.cert.write_bytes(key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        return pair
