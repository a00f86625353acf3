"""The trading service's use cases, one function each, on a unit of work.

Audit entries and error messages name experts by id only: the name is
personal data, and messages reach the logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kernel.audit import Actor
from kernel.directory import (
    Official,
    read_sample,
    require_official,
    sample_departments,
    sample_officials,
)
from kernel.errors import AlreadyExists, NotFound
from kernel.identity import Caller
from kernel.paging import after_text, page_size, rows_to_fetch, take_page
from services.trading.db.repository import TradingUnitOfWork
from services.trading.domain.model import (
    Agency,
    CatalogueEntry,
    Expert,
    eligible_experts,
    entry_requiring_venue,
    require_category,
    require_specialty,
)
from services.trading.domain.tenders import Bidder

TRADING_OFFICER = "trading_officer"


@dataclass(frozen=True)
class AgencyPage:
    agencies: list[Agency]
    next_page_token: str


@dataclass(frozen=True)
class ExpertPage:
    experts: list[Expert]
    next_page_token: str


def list_catalogue_entries(*, uow: TradingUnitOfWork, category: str) -> list[CatalogueEntry]:
    """The catalogue, or the entries of one category ('' for all), ordered by code."""
    with uow:
        return uow.catalogue.list(category=require_category(category) if category else "")


def check_must_enter(*, uow: TradingUnitOfWork, category: str,
                     estimated_value_fen: int) -> CatalogueEntry | None:
    with uow:
        entries = uow.catalogue.list(category=require_category(category))
    return entry_requiring_venue(entries, category=category,
                                 estimated_value_fen=estimated_value_fen)


def list_agencies(*, uow: TradingUnitOfWork, requested_size: int, page_token: str) -> AgencyPage:
    size = page_size(requested_size)
    with uow:
        page = take_page(uow.agencies.list(after=after_text(page_token),
                                           limit=rows_to_fetch(size)),
                         size, key=lambda a: (a.code,))
    return AgencyPage(page.items, page.next_page_token)


def get_agency(*, uow: TradingUnitOfWork, code: str) -> Agency:
    with uow:
        agency = uow.agencies.get(code)
    if agency is None:
        raise NotFound(f"tender agency {code} is not in the directory")
    return agency


def list_experts(*, uow: TradingUnitOfWork, caller: Caller, specialty: str,
                 requested_size: int, page_token: str) -> ExpertPage:
    size = page_size(requested_size)
    with uow:
        require_official(uow.staff, caller, role=TRADING_OFFICER)
        page = take_page(uow.experts.list(
            specialty=require_specialty(specialty) if specialty else "",
            after=after_text(page_token), limit=rows_to_fetch(size)), size, key=lambda e: (e.id,))
    return ExpertPage(page.items, page.next_page_token)


def _expert(uow: TradingUnitOfWork, expert_id: str) -> Expert:
    expert = uow.experts.get(expert_id)
    if expert is None:
        raise NotFound(f"expert {expert_id} is not in the pool")
    return expert


def get_expert(*, uow: TradingUnitOfWork, caller: Caller, expert_id: str) -> Expert:
    with uow:
        require_official(uow.staff, caller, role=TRADING_OFFICER)
        return _expert(uow, expert_id)


def _actor(caller: Caller, official: Official) -> Actor:
    return Actor(caller.system, official.id)


def register_expert(*, uow: TradingUnitOfWork, caller: Caller, expert_id: str, name: str,
                    specialties: list[str], employer: str) -> Expert:
    with uow:
        official = require_official(uow.staff, caller, role=TRADING_OFFICER)
        expert = Expert(id=expert_id, name=name.strip(), specialties=tuple(specialties),
                        employer=employer.strip())
        if uow.experts.get(expert.id) is not None:
            raise AlreadyExists(f"expert id {expert.id} is taken: choose another id")
        uow.experts.add(expert)
        uow.audit.append(actor=_actor(caller, official), action="expert.registered",
                         subject=f"expert/{expert.id}",
                         details={"specialties": list(expert.specialties)})
        uow.commit()
        return expert


def set_expert_availability(*, uow: TradingUnitOfWork, caller: Caller, expert_id: str,
                            available: bool, reason: str) -> Expert:
    with uow:
        official = require_official(uow.staff, caller, role=TRADING_OFFICER)
        current = _expert(uow, expert_id)
        changed = current.with_availability(available=available, reason=reason)
        if changed.available == current.available:
            # A retry of a change already made: nothing to change or record.
            return current
        uow.experts.save_availability(changed)
        # The reason stays out of the audit details: it may tell about the
        # expert's health or private life.
        uow.audit.append(actor=_actor(caller, official),
                         action="expert.made_available" if available else "expert.made_unavailable",
                         subject=f"expert/{expert_id}", details={"available": available})
        uow.commit()
        return changed


def eligible_expert_ids(*, uow: TradingUnitOfWork, specialty: str,
                        excluded_employers: list[str]) -> list[str]:
    """The ids, sorted, of the experts of ``specialty`` a committee may be drawn from."""
    with uow:
        experts = uow.experts.list(specialty=require_specialty(specialty))
    return eligible_experts(experts, specialty=specialty, excluded_employers=excluded_employers)


def load_sample_directory(*, uow: TradingUnitOfWork, sample_dir: Path) -> bool:
    """Load the sample trading directory and the directory copies into an empty database,
    once."""
    with uow:
        if uow.catalogue.count():
            return False
        uow.departments.replace_all(sample_departments(sample_dir))
        uow.staff.replace_all(sample_officials(sample_dir))
        sample = read_sample(sample_dir, "trading.json")
        for record in sample["catalogue"]:
            uow.catalogue.add(CatalogueEntry(
                code=record["code"], category=record["category"], name=record["name"],
                threshold_fen=record["threshold_fen"], basis=record["basis"]))
        for record in sample["agencies"]:
            uow.agencies.add(Agency(record["code"], record["name"], record["qualification"]))
        for record in sample["experts"]:
            uow.experts.add(Expert(id=record["id"], name=record["name"],
                                   specialties=tuple(record["specialties"]),
                                   employer=record["employer"]))
        for record in sample.get("bidders", []):
            uow.bidders.add(Bidder(record["id"], record["name"], record["system"]))
        for record in sample.get("expert_systems", []):
            uow.evaluations.add_expert_system(record["expert_id"], record["system"])
        uow.audit.append(actor=Actor("govhall-runner"), action="directory.loaded",
                         subject="trading_directory",
                         details={"catalogue_entries": len(sample["catalogue"]),
                                  "agencies": len(sample["agencies"]),
                                  "experts": len(sample["experts"]),
                                  "bidders": len(sample.get("bidders", [])),
                                  "expert_systems": len(sample.get("expert_systems", []))})
        uow.commit()
        return True
