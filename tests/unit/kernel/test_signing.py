"""A service's signed statements: canonical bytes, verification, rotation, forgery."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernel.signing import (
    BadSignature,
    Signed,
    TrustedKeys,
    canonical,
    service_signer,
)


def test_canonical_form_is_rfc8785() -> None:
    assert canonical({"b": 1, "a": "中", "c": [True, None]}) == (
        '{"a":"中","b":1,"c":[true,null]}'.encode())


def test_a_signature_verifies_with_the_published_key(tmp_path: Path) -> None:
    signer = service_signer(tmp_path, "review")
    signed = signer.sign({"case_number": "AP-1", "stage": "review"})
    trusted = TrustedKeys.load(tmp_path / "services")
    assert trusted.verify(Signed.from_dict(signed.as_dict()), signer="review") == {
        "case_number": "AP-1", "stage": "review"}


@pytest.mark.parametrize("body", [
    {"case_number": "AP-1"}, {}, {"中": "文", "n": 2**53 - 1, "f": 0.5, "s": "\u2028\n"},
    {"bids": [{"bidder_id": f"BD-{n:04d}", "valid": n % 2 == 0} for n in range(50)]}])
def test_the_signed_documents_canonical_form_is_spliced_exactly(
        tmp_path: Path, body: dict[str, object]) -> None:
    signer = service_signer(tmp_path, "trading")
    signed, written = signer.sign_canonical(body)
    assert written == canonical(signed.as_dict())
    trusted = TrustedKeys.load(tmp_path / "services")
    assert trusted.verify(signed, signer="trading") == body


def test_the_key_is_made_once_and_kept(tmp_path: Path) -> None:
    first = service_signer(tmp_path, "review")
    again = service_signer(tmp_path, "review")
    assert first.key_id == again.key_id
    key_file = tmp_path / "services" / "review" / "signing.key"
    assert key_file.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("tamper", ["body", "signer", "key_id", "signature"])
def test_any_change_is_refused(tmp_path: Path, tamper: str) -> None:
    service_signer(tmp_path, "intake")
    signed = service_signer(tmp_path, "review").sign({"stage": "sign"}).as_dict()
    if tamper == "body":
        signed["body"] = {"stage": "seal"}
    elif tamper == "signer":
        signed["signer"] = "intake"
    elif tamper == "key_id":
        signed["key_id"] = "0" * 16
    else:
        signed["signature"] = signed["signature"][:-4] + "AAA="
    trusted = TrustedKeys.load(tmp_path / "services")
    with pytest.raises(BadSignature):
        trusted.verify(Signed.from_dict(signed), signer="review")


def test_a_key_nobody_published_is_refused(tmp_path: Path) -> None:
    outsider = service_signer(tmp_path / "elsewhere", "review")
    service_signer(tmp_path, "review")
    trusted = TrustedKeys.load(tmp_path / "services")
    with pytest.raises(BadSignature, match="no published key"):
        trusted.verify(outsider.sign({"stage": "seal"}), signer="review")


def test_a_rotated_key_still_verifies_what_it_signed(tmp_path: Path) -> None:
    old = service_signer(tmp_path, "review")
    signed = old.sign({"n": 1})
    (tmp_path / "services" / "review" / "signing.key").unlink()
    new = service_signer(tmp_path, "review")
    assert new.key_id != old.key_id
    trusted = TrustedKeys.load(tmp_path / "services")
    assert trusted.verify(signed, signer="review") == {"n": 1}


def test_malformed_documents_are_refused() -> None:
    with pytest.raises(BadSignature):
        Signed.from_dict({"body": "x"})
    with pytest.raises(BadSignature):
        Signed.from_dict({"body": {}, "signer": 1, "key_id": "k", "signature": "s"})


def test_a_key_published_read_only_under_another_name_is_used_as_it_is(tmp_path: Path) -> None:
    """As deploy/k8s mounts it: signing.key from the service's Secret, the public key from a
    ConfigMap as <service>.pub, the folder read-only: nothing may be written there."""
    made = service_signer(tmp_path / "made", "review")
    folder = tmp_path / "mounted" / "services" / "review"
    folder.mkdir(parents=True)
    (folder / "signing.key").write_bytes(
        (tmp_path / "made" / "services" / "review" / "signing.key").read_bytes())
    (folder / "review.pub").write_text(made.public_pem())
    mounted = service_signer(tmp_path / "mounted", "review")
    assert mounted.key_id == made.key_id
    assert sorted(p.name for p in folder.iterdir()) == ["review.pub", "signing.key"]
    trusted = TrustedKeys.load(tmp_path / "mounted" / "services")
    assert trusted.verify(mounted.sign({"n": 1}), signer="review") == {"n": 1}


def test_a_derived_key_is_the_services_own_and_one_per_purpose(tmp_path: Path) -> None:
    signer = service_signer(tmp_path, "trading")
    again = service_signer(tmp_path, "trading")  # the same key file, read again
    other = service_signer(tmp_path / "elsewhere", "trading")  # another key

    assert len(signer.derived_key("update ids")) == 32
    assert signer.derived_key("update ids") == again.derived_key("update ids")
    assert signer.derived_key("update ids") != signer.derived_key("origin notes")
    assert signer.derived_key("update ids") != other.derived_key("update ids")
