"""The environment's PKI: one CA (trustme), serving and client certificates, SA keys.

Everything is written once into `<state>/pki` (private keys 0600) and reused by restarts
and by later attaches, so a kubeconfig handed out stays valid for the environment's life.
trustme makes the CA; leaves are signed with `cryptography` from the CA key on disk,
because a component added to a running environment (Vault after the control plane)
needs certificates from the same CA and trustme cannot reload one.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

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
        self._lock = threading.Lock()  # components write their files concurrently

    @property
    def exists(self) -> bool:
        return self.ca_cert.exists() and self.ca_key.exists()

    def ensure_ca(self) -> None:
        with self._lock:
            self._create_ca()

    def _create_ca(self) -> None:
        if not self.exists:
            self._ca = trustme.CA(organization_name="heracles-harness")
            self.root.mkdir(parents=True, exist_ok=True)
            self._ca.cert_pem.write_to_path(str(self.ca_cert))
            write_private(self.ca_key, self._ca.private_key_pem.bytes())

    def issue(self, name: str, *identities: str, common_name: str | None = None,
              organization: str | None = None) -> CertPair:
        """A leaf for serving and client auth, signed by the environment's CA."""
        self.ensure_ca()
        ca_cert = x509.load_pem_x509_certificate(self.ca_cert.read_bytes())
        ca_key = serialization.load_pem_private_key(self.ca_key.read_bytes(), password=None)
        key = ec.generate_private_key(ec.SECP256R1())
        names = identities or LOCAL_NAMES
        subject = [x509.NameAttribute(NameOID.COMMON_NAME, common_name or names[0])]
        if organization:
            subject.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
        sans: list[x509.GeneralName] = []
        for ident in names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(ident)))
            except ValueError:
                sans.append(x509.DNSName(ident))
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(subject))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_encipherment=False, content_commitment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
        )
        pair = CertPair(self.root / f"{name}.crt", self.root / f"{name}.key")
        pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        write_private(pair.key, key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
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
