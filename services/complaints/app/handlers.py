"""The complaints service's use cases, one function each, on a unit of work."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kernel.audit import Actor
from kernel.directory import (
    Department,
    read_sample,
    require_official,
    sample_departments,
    sample_officials,
)
from kernel.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
)
from kernel.identity import Caller
from kernel.paging import after_number, after_text, page_size, rows_to_fetch, take_page
from services.complaints.db.repository import ComplaintsUnitOfWork
from services.complaints.domain.model import (
    INITIAL_BASIS,
    Category,
    Platform,
    RoutingChange,
    RoutingRule,
    change_routing,
)

#: Who may change the routing table: the center's dispatchers and its operators.
ROUTING_ROLES = ("complaint_dispatcher", "operator")


@dataclass(frozen=True)
class DepartmentPage:
    departments: list[Department]
    next_page_token: str


@dataclass(frozen=True)
class CategoryPage:
    categories: list[Category]
    department_names: dict[str, str]
    next_page_token: str


@dataclass(frozen=True)
class RulePage:
    rules: list[RoutingRule]
    department_names: dict[str, str]
    next_page_token: str


@dataclass(frozen=True)
class Routing:
    """Where a category's complaints go: the responsible department, by which rule."""

    category: Category
    department: Department


@dataclass(frozen=True)
class RoutingSet:
    change: RoutingChange
    department: Department


def list_departments(*, uow: ComplaintsUnitOfWork, kind: str, requested_size: int,
                     page_token: str) -> DepartmentPage:
    size = page_size(requested_size)
    with uow:
        page = take_page(uow.departments.list(kind=kind, after=after_text(page_token),
                                              limit=rows_to_fetch(size)),
                         size, key=lambda d: (d.code,))
    return DepartmentPage(page.items, page.next_page_token)


def get_department(*, uow: ComplaintsUnitOfWork, code: str) -> Department:
    with uow:
        department = uow.departments.get(code)
    if department is None:
        raise NotFound(f"department {code} is not in the directory")
    return department


def list_categories(*, uow: ComplaintsUnitOfWork, department_code: str, requested_size: int,
                    page_token: str) -> CategoryPage:
    size = page_size(requested_size)
    with uow:
        if department_code and uow.departments.get(department_code) is None:
            raise NotFound(f"department {department_code} is not in the directory")
        page = take_page(uow.routing.list_categories(
            department_code=department_code, after=after_text(page_token),
            limit=rows_to_fetch(size)), size, key=lambda c: (c.code,))
        return CategoryPage(
            page.items, uow.departments.names({c.department_code for c in page.items}),
            page.next_page_token)


def route_complaint(*, uow: ComplaintsUnitOfWork, category_code: str) -> Routing:
    """The department responsible for ``category_code`` under the rule in force."""
    with uow:
        category = uow.routing.category(category_code)
        if category is None:
            raise NotFound(f"complaint category {category_code} is not in the routing table")
        department = uow.departments.get(category.department_code)
    if department is None:
        # The directory was reloaded without a department still holding categories.
        raise FailedPrecondition(
            f"category {category_code} is routed to {category.department_code}, which is no "
            "longer in the directory: a dispatcher must re-point it")
    return Routing(category, department)


def set_routing_rule(*, uow: ComplaintsUnitOfWork, caller: Caller, category_code: str,
                     department_code: str, name: str, basis: str) -> RoutingSet:
    """Create a category routed to a department, or re-point an existing one."""
    with uow:
        official = require_official(uow.staff, caller, role=ROUTING_ROLES)
        department = uow.departments.get(department_code)
        if department is None:
            raise InvalidArgument(
                f"department {department_code} is not in the directory",
                violations=[FieldViolation("department_code", "unknown department")])
        change = change_routing(
            uow.routing.category(category_code), category_code=category_code,
            department_code=department_code, name=name, basis=basis, at=datetime.now(UTC),
            set_by_official_id=official.id)
        uow.routing.apply(change)
        uow.audit.append(
            actor=Actor(caller.system, official.id), action="routing_rule.set",
            subject=f"category/{category_code}",
            details={"version": change.rule.version, "department": department_code,
                     "previous_department": change.previous_department_code})
        uow.commit()
    return RoutingSet(change, department)


def list_routing_rules(*, uow: ComplaintsUnitOfWork, category_code: str, requested_size: int,
                       page_token: str) -> RulePage:
    size = page_size(requested_size)
    after = after_number(page_token)
    with uow:
        if uow.routing.category(category_code) is None:
            raise NotFound(f"complaint category {category_code} is not in the routing table")
        page = take_page(uow.routing.rules(category_code, after_version=after,
                                           limit=rows_to_fetch(size)),
                         size, key=lambda r: (r.version,))
        return RulePage(page.items,
                        uow.departments.names({r.department_code for r in page.items}),
                        page.next_page_token)


def list_platforms(*, uow: ComplaintsUnitOfWork) -> list[Platform]:
    with uow:
        return uow.platforms.list()


def load_sample_directory(*, uow: ComplaintsUnitOfWork, sample_dir: Path) -> bool:
    """Load the sample directory, routing table and platforms into an empty database, once."""
    with uow:
        if uow.routing.count_categories():
            return False
        departments = sample_departments(sample_dir)
        known = {d.code for d in departments}
        uow.departments.replace_all(departments)
        uow.staff.replace_all(sample_officials(sample_dir))
        sample = read_sample(sample_dir, "complaints.json")
        loaded_at = datetime.now(UTC)
        for record in sample["categories"]:
            if record["department_code"] not in known:
                raise ValueError(f"category {record['code']} is routed to unknown department "
                                 f"{record['department_code']}")
            uow.routing.apply(change_routing(
                None, category_code=record["code"], department_code=record["department_code"],
                name=record["name"], basis=INITIAL_BASIS, at=loaded_at))
        platforms = [Platform(p["id"], p["name"], p["kind"], p.get("system", ""))
                     for p in sample["platforms"]]
        uow.platforms.replace_all(platforms)
        uow.audit.append(actor=Actor("govhall-runner"), action="directory.loaded",
                         subject="routing_table",
                         details={"departments": len(departments),
                                  "categories": len(sample["categories"]),
                                  "platforms": len(platforms)})
        uow.commit()
        return True
