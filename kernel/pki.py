"""The embedded default's local certificate authority.

On first start the runner makes, under ``var/pki/``:

- ``ca.pem`` / ``ca.key``: the local CA that signs everything below;
- ``server.pem`` / ``server.key``: the certificate every service presents
  (names localhost, 127.0.0.1 and ::1);
- ``clients/<system>.pem`` / ``clients/<system>.key``: one client
  certificate per system of the sample registry of calling systems
  (``deploy/sample/systems.json``). The calling system is the
  certificate's common name.

Existing files are kept, so restarting keeps the same identities.
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: Where the sample registry of calling systems lives.
SAMPLE_REGISTRY = Path(__file__).resolve().parent.parent / "deploy" / "sample" / "systems.json"


def sample_system_names(registry: Path = SAMPLE_REGISTRY) -> tuple[str, ...]:
    """The systems of a registry file that hold certificates (all but the shared entry "*")."""
    records = json.loads(registry.read_text(encoding="utf-8"))["systems"]
    return tuple(r["name"] for r in records if r["name"] != "*")


#: The systems the sample data knows; each gets a client certificate.
SAMPLE_SYSTEMS = sample_system_names()

_VALIDITY = timedelta(days=825)


@dataclass(frozen=True)
class KeyPair:
    cert: Path
    key: Path

    def read(self) -> tuple[bytes, bytes]:
        return self.key.read_bytes(), self.cert.read_bytes()


def ca_cert_path(pki_dir: Path) -> Path:
    return pki_dir / "ca.pem"


def server_pair(pki_dir: Path) -> KeyPair:
    return KeyPair(pki_dir / "server.pem", pki_dir / "server.key")


def client_pair(pki_dir: Path, system: str) -> KeyPair:
    return KeyPair(pki_dir / "clients" / f"{system}.pem", pki_dir / "clients" / f"{system}.key")


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "govhall"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _load_ca(pki_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate(ca_cert_path(pki_dir).read_bytes())
    key = serialization.load_pem_private_key((pki_dir / "ca.key").read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return cert, key


def _make_ca(pki_dir: Path) -> None:
    key = _new_key()
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("govhall local CA"))
        .issuer_name(_name("govhall local CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY * 4)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )
    _write_key(pki_dir / "ca.key", key)
    ca_cert_path(pki_dir).write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def issue(pki_dir: Path, pair: KeyPair, *, common_name: str, server: bool) -> None:
    """Sign a new certificate for ``common_name`` with the local CA."""
    ca_cert, ca_key = _load_ca(pki_dir)
    key = _new_key()
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False)
    )
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ]), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    _write_key(pair.key, key)
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def ensure_pki(pki_dir: Path, systems: tuple[str, ...] = SAMPLE_SYSTEMS) -> None:
    """Make whatever of the CA, server and client certificates is missing."""
    pki_dir.mkdir(parents=True, exist_ok=True)
    if not ca_cert_path(pki_dir).exists():
        _make_ca(pki_dir)
    if not server_pair(pki_dir).cert.exists():
        issue(pki_dir, server_pair(pki_dir), common_name="govhall services", server=True)
    for system in systems:
        pair = client_pair(pki_dir, system)
        if not pair.cert.exists():
            issue(pki_dir, pair, common_name=system, server=False)
