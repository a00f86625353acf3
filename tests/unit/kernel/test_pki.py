from __future__ import annotations

import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from kernel.pki import ca_cert_path, client_pair, ensure_pki, server_pair


def test_the_local_ca_issues_server_and_client_certificates(tmp_path: Path) -> None:
    ensure_pki(tmp_path, ("hotline-12345",))
    ca = x509.load_pem_x509_certificate(ca_cert_path(tmp_path).read_bytes())
    server = x509.load_pem_x509_certificate(server_pair(tmp_path).cert.read_bytes())
    client_pem = client_pair(tmp_path, "hotline-12345").cert.read_bytes()
    client = x509.load_pem_x509_certificate(client_pem)
    server.verify_directly_issued_by(ca)
    client.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    assert client.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "hotline-12345"
    assert (tmp_path / "ca.key").stat().st_mode & 0o077 == 0


def test_existing_certificates_are_kept(tmp_path: Path) -> None:
    ensure_pki(tmp_path, ("operator",))
    first = client_pair(tmp_path, "operator").cert.read_bytes()
    ensure_pki(tmp_path, ("operator",))
    assert client_pair(tmp_path, "operator").cert.read_bytes() == first
