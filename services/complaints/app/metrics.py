"""GetComplaintMetrics: the period's figures, overall and per lead department.

Any system the registry lets call it may (operators, the supervision
system): the figures hold counts and codes only, no case and no person.
The definitions are in services/complaints/domain/metrics.py and
docs/complaints.md ("Metrics").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from kernel.errors import FieldViolation, NotFound
from services.complaints.db.repository import ComplaintsUnitOfWork
from services.complaints.domain.metrics import ComplaintMetrics, check_period, complaint_metrics


@dataclass(frozen=True)
class MetricsView:
    metrics: ComplaintMetrics
    #: The departments' names by code, for those in the answer.
    department_names: dict[str, str]


def get_complaint_metrics(*, uow: ComplaintsUnitOfWork, start: datetime, end: datetime,
                          department_code: str, as_of: datetime) -> MetricsView:
    check_period(start, end)
    with uow:
        if department_code and uow.departments.get(department_code) is None:
            raise NotFound(f"department {department_code} is not in the directory",
                           violations=[FieldViolation("department_code", "unknown department")])
        records = uow.case_records.received_between(
            start, end, department_code=department_code)
        metrics = complaint_metrics(records, start=start, end=end, as_of=as_of,
                                    department_code=department_code)
        names = uow.departments.names(d.department_code for d in metrics.departments)
    return MetricsView(metrics, names)
