"""The intake service's use cases, one function each, on a unit of work."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kernel.audit import Actor
from kernel.directory import (
    read_sample,
    require_official,
    sample_departments,
    sample_officials,
)
from kernel.errors import InvalidArgument, NotFound
from kernel.identity import Caller
from kernel.paging import after_text, page_size, rows_to_fetch, take_page
from services.intake.db.repository import IntakeUnitOfWork
from services.intake.domain.model import ApprovalItem, Material, next_version


@dataclass(frozen=True)
class ItemPage:
    items: list[ApprovalItem]
    department_names: dict[str, str]
    next_page_token: str


def list_approval_items(*, uow: IntakeUnitOfWork, department_code: str, requested_size: int,
                        page_token: str) -> ItemPage:
    size = page_size(requested_size)
    with uow:
        if department_code and uow.departments.get(department_code) is None:
            raise NotFound(f"department {department_code} is not in the directory")
        page = take_page(uow.catalogue.list_current(
            department_code=department_code, after=after_text(page_token),
            limit=rows_to_fetch(size)), size, key=lambda i: (i.code,))
        return ItemPage(page.items, uow.departments.names(i.department_code for i in page.items),
                        page.next_page_token)


def get_approval_item(*, uow: IntakeUnitOfWork, code: str,
                      version: int) -> tuple[ApprovalItem, str]:
    with uow:
        item = uow.catalogue.at_version(code, version) if version else uow.catalogue.current(code)
        if item is None:
            if version and uow.catalogue.current(code) is not None:
                raise NotFound(f"approval item {code} has no version {version}")
            raise NotFound(f"approval item {code} is not in the catalogue")
        return item, uow.departments.names([item.department_code])[item.department_code]


def publish_approval_item_version(*, uow: IntakeUnitOfWork, caller: Caller,
                                  item: ApprovalItem) -> tuple[ApprovalItem, str]:
    with uow:
        official = require_official(uow.staff, caller, role="operator")
        department = uow.departments.get(item.department_code)
        if department is None:
            raise InvalidArgument(
                f"department {item.department_code} is not in the directory")
        published = next_version(uow.catalogue.current(item.code), item)
        uow.catalogue.add(published)
        uow.audit.append(
            actor=Actor(caller.system, official.id), action="approval_item.published",
            subject=f"approval_item/{published.code}",
            details={"version": published.version, "department": published.department_code})
        uow.commit()
        return published, department.name


def load_sample_directory(*, uow: IntakeUnitOfWork, sample_dir: Path) -> bool:
    """Load the sample catalogue and directory copies into an empty database, once."""
    with uow:
        if uow.catalogue.count_current():
            return False
        uow.departments.replace_all(sample_departments(sample_dir))
        uow.staff.replace_all(sample_officials(sample_dir))
        records = read_sample(sample_dir, "approval_items.json")["items"]
        for record in records:
            item = ApprovalItem(
                code=record["code"], name=record["name"],
                department_code=record["department_code"],
                legal_limit_days=record["legal_limit_days"],
                promised_limit_days=record["promised_limit_days"],
                materials=tuple(Material(**m) for m in record["materials"]),
                special_procedures=tuple(record["special_procedures"]),
                fee_fen=record["fee_fen"], basis=record["basis"], version=1)
            uow.catalogue.add(item)
        uow.audit.append(actor=Actor("govhall-runner"), action="directory.loaded",
                         subject="catalogue", details={"items": len(records)})
        uow.commit()
        return True
