"""kernel/linked_lookup.py's ``lookup_at``: with no address there is no lookup (the link
stays unchecked), with one there is."""

from __future__ import annotations

from kernel.linked_lookup import lookup_at


def test_without_an_address_no_lookup_is_built_and_with_one_it_is() -> None:
    built: list[str] = []

    def build(address: str) -> str:
        built.append(address)
        return f"lookup of {address}"

    assert lookup_at("", build) is None
    assert built == []
    assert lookup_at("intake.internal:50051", build) == "lookup of intake.internal:50051"
    assert built == ["intake.internal:50051"]
