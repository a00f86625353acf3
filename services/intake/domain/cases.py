"""Acceptance of applications (Administrative License Law art. 32), free of any framework.

The window clerk's findings decide one of five outcomes: not subject to
permit, outside this authority, refused (不予受理), correction required
(one notice listing every missing or defective material), or accepted with
a dated receipt. Defects fixed on the spot are recorded and do not block.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from enum import StrEnum

from kernel.chinatime import china_date as china_date
from kernel.errors import FieldViolation, InvalidArgument

# China's date decides case numbers and acceptance dates; the seal code imports it from here.
from kernel.numbering import day_number
from services.intake.domain.model import ApprovalItem

CASE_NUMBER_PATTERN = re.compile(r"^AP-[0-9]{8}-[0-9]{6}$")
#: What a refusal tells the applicant of their rights (Administrative Reconsideration
#: Law art. 20, Administrative Litigation Law art. 46).
RIGHTS_TEXT = ("如不服本决定，可以自收到本通知书之日起60日内依法申请行政复议，"
               "或者在6个月内依法向人民法院提起行政诉讼。")
NOT_PROVIDED = "未提交"


def case_number(day: date, sequence: int) -> str:
    """AP-YYYYMMDD-NNNNNN: the day's running number, counting from 1."""
    return day_number("AP", day, sequence, what="case")


class Finding(StrEnum):
    """What the window clerk found before looking at the materials."""

    NONE = "none"
    NOT_SUBJECT_TO_PERMIT = "not_subject_to_permit"
    OUTSIDE_AUTHORITY = "outside_authority"
    REFUSED = "refused"


class IntakeOutcome(StrEnum):
    ACCEPTED = "accepted"
    CORRECTION_REQUIRED = "correction_required"
    NOT_SUBJECT_TO_PERMIT = "not_subject_to_permit"
    OUTSIDE_AUTHORITY = "outside_authority"
    REFUSED = "refused"


class CaseStatus(StrEnum):
    AWAITING_MATERIALS = "awaiting_materials"
    ACCEPTED = "accepted"
    # The approval workflow moves an accepted case through these.
    UNDER_REVIEW = "under_review"
    AWAITING_SIGNATURE = "awaiting_signature"
    AWAITING_SEAL = "awaiting_seal"
    APPROVED = "approved"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"
    # Closed at the window.
    NOT_SUBJECT_TO_PERMIT = "not_subject_to_permit"
    OUTSIDE_AUTHORITY = "outside_authority"
    NOT_ACCEPTED = "not_accepted"


#: Statuses of a case whose approval chain runs (or should run) in a workflow.
IN_CHAIN = frozenset({CaseStatus.ACCEPTED, CaseStatus.UNDER_REVIEW,
                      CaseStatus.AWAITING_SIGNATURE, CaseStatus.AWAITING_SEAL})
#: Statuses the approval workflow may report through its timeline events.
WORKFLOW_STATUSES = frozenset({CaseStatus.UNDER_REVIEW, CaseStatus.AWAITING_SIGNATURE,
                               CaseStatus.AWAITING_SEAL, CaseStatus.APPROVED,
                               CaseStatus.REFUSED, CaseStatus.WITHDRAWN})
SLA_STATES = frozenset({"on_time", "warning", "breached", "paused"})


class NoticeKind(StrEnum):
    ACCEPTANCE_RECEIPT = "acceptance_receipt"
    CORRECTION = "correction"
    NOT_SUBJECT_TO_PERMIT = "not_subject_to_permit"
    OUTSIDE_AUTHORITY = "outside_authority"
    REFUSAL = "refusal"


@dataclass(frozen=True)
class Applicant:
    """Personal data: kept in the intake database only, never logged or sent on."""

    kind: str
    name: str
    id_number: str
    phone: str

    def masked(self) -> Applicant:
        return Applicant(self.kind, mask_name(self.name), "", "")


def mask_name(name: str) -> str:
    """A name as the public may see it: its first character and an asterisk."""
    return f"{name[0]}*" if name else ""


@dataclass(frozen=True)
class SubmittedMaterial:
    """One material as the clerk found it at the window."""

    code: str
    provided: bool
    defects: tuple[str, ...] = ()
    fixed_on_spot: bool = False

    @property
    def fine(self) -> bool:
        return self.provided and (not self.defects or self.fixed_on_spot)


@dataclass(frozen=True)
class NoticeItem:
    """One material a correction notice asks for, and why."""

    material_code: str
    material_name: str
    reason: str


@dataclass(frozen=True)
class Notice:
    kind: NoticeKind
    text: str
    issued_at: datetime
    items: tuple[NoticeItem, ...] = ()
    competent_authority: str = ""
    reasons: tuple[str, ...] = ()
    number: str = ""

    @property
    def issued_on(self) -> date:
        return china_date(self.issued_at)


@dataclass(frozen=True)
class Findings:
    """The clerk's findings beside the materials; the texts that go with them."""

    finding: Finding
    explanation: str = ""
    competent_authority: str = ""
    refusal_reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Assessment:
    """What the window decides on one submission."""

    outcome: IntakeOutcome
    notice: Notice
    materials: tuple[SubmittedMaterial, ...]

    @property
    def status(self) -> CaseStatus:
        return {
            IntakeOutcome.ACCEPTED: CaseStatus.ACCEPTED,
            IntakeOutcome.CORRECTION_REQUIRED: CaseStatus.AWAITING_MATERIALS,
            IntakeOutcome.NOT_SUBJECT_TO_PERMIT: CaseStatus.NOT_SUBJECT_TO_PERMIT,
            IntakeOutcome.OUTSIDE_AUTHORITY: CaseStatus.OUTSIDE_AUTHORITY,
            IntakeOutcome.REFUSED: CaseStatus.NOT_ACCEPTED,
        }[self.outcome]


def _blank(text: str) -> bool:
    return not text.strip()


def check_materials(item: ApprovalItem, materials: tuple[SubmittedMaterial, ...], *,
                    allowed: set[str] | None = None, field: str = "materials") -> None:
    """Refuse unknown, duplicate or self-contradictory materials, naming all of them."""
    problems: list[FieldViolation] = []
    known = {m.code for m in item.materials}
    codes = [m.code for m in materials]
    duplicates = sorted({c for c in codes if codes.count(c) > 1})
    if duplicates:
        problems.append(FieldViolation(field, f"materials given twice: {', '.join(duplicates)}"))
    unknown = sorted({c for c in codes if c not in known})
    if unknown:
        problems.append(FieldViolation(
            field, f"item {item.code} version {item.version} has no materials "
                   f"{', '.join(unknown)}"))
    if allowed is not None:
        unlisted = sorted({c for c in codes if c in known and c not in allowed})
        if unlisted:
            problems.append(FieldViolation(
                field, f"the correction notice does not ask for {', '.join(unlisted)}"))
    for index, material in enumerate(materials):
        if not material.provided and material.defects:
            problems.append(FieldViolation(
                f"{field}[{index}].defects", "a material not provided cannot have defects"))
        if material.fixed_on_spot and not material.defects:
            problems.append(FieldViolation(
                f"{field}[{index}].fixed_on_spot", "name the defects that were fixed"))
        if any(_blank(d) for d in material.defects):
            problems.append(FieldViolation(f"{field}[{index}].defects", "a defect is blank"))
    if problems:
        raise InvalidArgument("; ".join(p.description for p in problems), violations=problems)


def outstanding(item: ApprovalItem,
                materials: tuple[SubmittedMaterial, ...]) -> tuple[NoticeItem, ...]:
    """Every material still missing or defective, in the item's order."""
    given = {m.code: m for m in materials}
    items: list[NoticeItem] = []
    for material in item.materials:
        handed_in = given.get(material.code)
        if handed_in is None or not handed_in.provided:
            if material.required:
                items.append(NoticeItem(material.code, material.name, NOT_PROVIDED))
        elif not handed_in.fine:
            items.append(NoticeItem(material.code, material.name,
                                    "存在缺陷：" + "；".join(handed_in.defects)))
    return tuple(items)


def assess(item: ApprovalItem, findings: Findings, materials: tuple[SubmittedMaterial, ...],
           *, case_number: str, now: datetime) -> Assessment:
    """Decide a submission at the window, by art. 32."""
    check_materials(item, materials)
    finding = findings.finding
    if finding == Finding.NOT_SUBJECT_TO_PERMIT:
        if _blank(findings.explanation):
            raise InvalidArgument("explain why the application needs no permit",
                                  violations=[FieldViolation("explanation", "is required")])
        return Assessment(IntakeOutcome.NOT_SUBJECT_TO_PERMIT,
                          not_subject_notice(item, findings.explanation, now), materials)
    if finding == Finding.OUTSIDE_AUTHORITY:
        if _blank(findings.competent_authority):
            raise InvalidArgument(
                "name the authority the applicant should turn to",
                violations=[FieldViolation("competent_authority", "is required")])
        return Assessment(IntakeOutcome.OUTSIDE_AUTHORITY,
                          outside_authority_notice(item, findings.competent_authority, now),
                          materials)
    if finding == Finding.REFUSED:
        reasons = tuple(r for r in findings.refusal_reasons if not _blank(r))
        if not reasons:
            raise InvalidArgument("a refusal needs its reasons",
                                  violations=[FieldViolation("refusal_reasons", "is required")])
        return Assessment(IntakeOutcome.REFUSED, refusal_notice(item, reasons, now), materials)
    missing = outstanding(item, materials)
    if missing:
        return Assessment(IntakeOutcome.CORRECTION_REQUIRED,
                          correction_notice(item, missing, now), materials)
    return Assessment(IntakeOutcome.ACCEPTED, acceptance_receipt(item, case_number, now),
                      materials)


def supplemented(current: tuple[SubmittedMaterial, ...],
                 supplied: tuple[SubmittedMaterial, ...]) -> tuple[SubmittedMaterial, ...]:
    """The case's materials after a supplement: what was supplied replaces what was there."""
    given = {m.code: m for m in supplied}
    merged = [given.pop(m.code, m) for m in current]
    return (*merged, *given.values())


def fixed_on_the_spot(materials: tuple[SubmittedMaterial, ...]) -> list[str]:
    return [m.code for m in materials if m.provided and m.defects and m.fixed_on_spot]


# ---- the written notices ----------------------------------------------------------------

def _today(now: datetime) -> str:
    day = china_date(now)
    return f"{day.year}年{day.month}月{day.day}日"


def correction_notice(item: ApprovalItem, items: tuple[NoticeItem, ...],
                      now: datetime) -> Notice:
    lines = [f"{i}. {n.material_code} {n.material_name}（{n.reason}）"
             for i, n in enumerate(items, start=1)]
    text = (f"补正材料通知书\n您申请的「{item.name}」（事项编码 {item.code}）材料不齐全或者不符合"
            f"法定形式。请一次性补正下列全部材料，补正齐全之日即为受理之日：\n"
            + "\n".join(lines) + f"\n{_today(now)}")
    return Notice(NoticeKind.CORRECTION, text, now, items=items)


def acceptance_receipt(item: ApprovalItem, number: str, now: datetime) -> Notice:
    text = (f"受理通知书\n您申请的「{item.name}」（事项编码 {item.code}）材料齐全、符合法定形式，"
            f"本机关已于{_today(now)}受理，受理编号 {number}。"
            f"承诺办结时限{item.promised_limit_days}个工作日，"
            f"法定办结时限{item.legal_limit_days}个工作日。")
    return Notice(NoticeKind.ACCEPTANCE_RECEIPT, text, now)


def not_subject_notice(item: ApprovalItem, explanation: str, now: datetime) -> Notice:
    text = (f"不需取得行政许可告知书\n您申请的事项依法不需要取得「{item.name}」行政许可，"
            f"本机关不予受理。说明：{explanation}\n{_today(now)}")
    return Notice(NoticeKind.NOT_SUBJECT_TO_PERMIT, text, now)


def outside_authority_notice(item: ApprovalItem, authority: str, now: datetime) -> Notice:
    text = (f"不予受理通知书\n您申请的事项不属于本机关职权范围，本机关不予受理。"
            f"请向{authority}提出申请。\n{_today(now)}")
    return Notice(NoticeKind.OUTSIDE_AUTHORITY, text, now, competent_authority=authority)


def refusal_notice(item: ApprovalItem, reasons: tuple[str, ...], now: datetime) -> Notice:
    listed = "\n".join(f"{i}. {r}" for i, r in enumerate(reasons, start=1))
    text = (f"不予受理决定书\n您申请的「{item.name}」（事项编码 {item.code}），"
            f"经审查，决定不予受理。理由如下：\n{listed}\n{RIGHTS_TEXT}\n{_today(now)}")
    return Notice(NoticeKind.REFUSAL, text, now, reasons=reasons)


def numbered(notice: Notice, case_number: str, ordinal: int) -> Notice:
    """The notice under its number: the case's, then its place among the case's notices."""
    return replace(notice, number=f"{case_number}-N{ordinal:02d}")


def utc_iso(moment: datetime) -> str:
    """An aware datetime as ISO 8601 in UTC, to the microsecond, so text order is time order."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class CaseDeadlines:
    warning_at: datetime
    promised_due_at: datetime
    legal_due_at: datetime


@dataclass(frozen=True)
class Case:
    """One application, from the window to the end of its chain."""

    number: str
    system: str
    status: CaseStatus
    outcome: IntakeOutcome
    finding: Finding
    item_code: str
    item_version: int
    item_name: str
    department_code: str
    applicant: Applicant
    materials: tuple[SubmittedMaterial, ...]
    clerk_id: str
    submitted_at: datetime
    accepted_by: str = ""
    accepted_at: datetime | None = None
    accepted_on: date | None = None
    closed_at: datetime | None = None
    withdrawal_reason: str = ""
    workflow_started: bool = False
    sla_state: str = ""
    deadlines: CaseDeadlines | None = None
    calendar_gap_year: int = 0
    certificate_number: str = ""

    @property
    def in_chain(self) -> bool:
        return self.status in IN_CHAIN


@dataclass(frozen=True)
class TimelineEvent:
    """One line of a case's timeline: what happened, when, at which stage, by whom."""

    event_id: str
    kind: str
    at: datetime
    stage: str = ""
    official_id: str = ""
    details: dict[str, str] | None = None
    deadlines: CaseDeadlines | None = None
    status: str = ""
    sla_state: str = ""
