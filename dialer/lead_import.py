"""Pure lead-file parsing and validation: bytes in, drafts and per-line errors out.

Real lead files from our users come from Excel exports: UTF-8 with a BOM, or GBK/GB18030, comma or tab
separated, Chinese or English headers, broken rows. Nothing here touches the database: the service
passes in the numbers already present and the DNC matcher.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from core.phone import InvalidPhoneNumber, normalize

MAX_FIELD_CHARS = 1000
MAX_COLUMNS = 100
csv.field_size_limit(64 * 1024)  # a larger field is a broken file, reported as such, not a memory spike

# Header aliases (lower-cased, spaces stripped) -> our field names.
HEADER_ALIASES: dict[str, str] = {
    **dict.fromkeys(
        [
            "phone",
            "phonenumber",
            "mobile",
            "tel",
            "telephone",
            "number",
            "电话",
            "手机",
            "手机号",
            "号码",
            "电话号码",
            "联系电话",
            "手机号码",
        ],
        "phone",
    ),
    **dict.fromkeys(["altphone", "altphones", "phone2", "备用电话", "其他电话"], "alt_phones"),
    **dict.fromkeys(["name", "contact", "contactname", "姓名", "联系人", "客户姓名"], "name"),
    **dict.fromkeys(
        [
            "company",
            "companyname",
            "organisation",
            "organization",
            "公司",
            "单位",
            "公司名称",
            "企业名称",
            "客户名称",
        ],
        "company",
    ),
    **dict.fromkeys(["segment", "客户类型", "细分", "客户分类"], "segment"),
    **dict.fromkeys(["grade", "intent", "级别", "等级", "意向等级", "意向"], "grade"),
    **dict.fromkeys(["priority", "优先级"], "priority"),
    **dict.fromkeys(["region", "country", "国家", "地区代码"], "region"),
}
KNOWN_FIELDS = {"phone", "alt_phones", "name", "company", "segment", "grade", "priority", "region"}
VALID_GRADES = {"", "A", "B", "C"}


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    code: str
    message: str
    field: str = ""


@dataclass(frozen=True, slots=True)
class LeadDraft:
    line: int
    phone_e164: str
    region: str
    timezone: str
    name: str = ""
    company: str = ""
    segment: str = ""
    grade: str = ""
    priority: int = 0
    alt_phones: tuple[str, ...] = ()
    custom: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ImportPlan:
    drafts: tuple[LeadDraft, ...]
    errors: tuple[RowError, ...]
    total_rows: int


@dataclass(frozen=True, slots=True)
class ParsedRows:
    """Each non-blank row as a draft or its error, before the campaign's duplicates and DNC are known."""

    results: tuple[LeadDraft | RowError, ...]

    @property
    def total_rows(self) -> int:
        return len(self.results)

    @property
    def phones(self) -> frozenset[str]:
        """The numbers to look up: only these need the campaign's leads and DNC rules."""
        return frozenset(r.phone_e164 for r in self.results if isinstance(r, LeadDraft))


class UnreadableFile(ValueError):
    """The file as a whole cannot be read (not one bad row: the whole thing)."""


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM) first; then GB18030, a superset of the GBK Excel writes in China."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise UnreadableFile("file is neither UTF-8 nor GBK/GB18030 text")


def _sniff_delimiter(sample: str) -> str:
    first_line = sample.split("\n", 1)[0]
    counts = {d: first_line.count(d) for d in (",", "\t", ";", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def read_rows(data: bytes, filename: str) -> Iterator[tuple[int, list[str]]]:
    """Yield (line number, cells) for every row after the header; line numbers are 1-based file lines."""
    if filename.lower().endswith(".xlsx"):
        yield from _read_xlsx(data)
        return
    text = decode_text(data)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_sniff_delimiter(text[:4096]))
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise UnreadableFile(f"line {reader.line_num}: {exc}") from exc
        yield reader.line_num, row


def _read_xlsx(data: bytes) -> Iterator[tuple[int, list[str]]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a broken zip/xml
        raise UnreadableFile(f"not a readable .xlsx workbook: {exc.__class__.__name__}") from exc
    sheet = workbook.worksheets[0]
    for index, values in enumerate(sheet.iter_rows(values_only=True), start=1):
        yield index, ["" if v is None else _cell_text(v) for v in values]
    workbook.close()


def _cell_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Excel stores phone numbers typed as numbers as floats
    return str(value)


def map_header(cells: list[str]) -> list[str]:
    """Our field name per column; unknown columns become custom fields named by their header."""
    mapped = []
    for cell in cells:
        key = re.sub(r"[\s_\-]", "", cell.strip().lower())
        mapped.append(HEADER_ALIASES.get(key, f"custom:{cell.strip()[:64]}" if cell.strip() else ""))
    return mapped


def plan_import(
    rows: Iterable[tuple[int, list[str]]],
    *,
    default_region: str,
    existing_phones: Collection[str],
    is_dnc: Callable[[str], bool],
) -> ImportPlan:
    """Validate rows into lead drafts; every rejected row is reported with its line and reason."""
    return screen_rows(
        parse_rows(rows, default_region=default_region), existing_phones=existing_phones, is_dnc=is_dnc
    )


def parse_rows(rows: Iterable[tuple[int, list[str]]], *, default_region: str) -> ParsedRows:
    """Header first, then every non-blank row as a draft (number normalised) or the reason it is not."""
    iterator = iter(rows)
    try:
        header_line, header_cells = next(iterator)
    except StopIteration:
        raise UnreadableFile("file is empty") from None
    columns = map_header(header_cells)
    if "phone" not in columns:
        raise UnreadableFile(f"line {header_line}: no phone column in the header (e.g. 'phone' or '电话')")
    if len(columns) > MAX_COLUMNS:
        raise UnreadableFile(f"line {header_line}: more than {MAX_COLUMNS} columns")
    results = tuple(
        _draft_from_row(line, columns, cells, default_region)
        for line, cells in iterator
        if any(c.strip() for c in cells)
    )
    return ParsedRows(results=results)


def screen_rows(
    parsed: ParsedRows, *, existing_phones: Collection[str], is_dnc: Callable[[str], bool]
) -> ImportPlan:
    """Drop numbers already in the campaign (or earlier in the file) and numbers on a DNC list."""
    seen = set(existing_phones)
    drafts: list[LeadDraft] = []
    errors: list[RowError] = []
    for result in parsed.results:
        if isinstance(result, RowError):
            errors.append(result)
        elif (phone := result.phone_e164) in seen:
            errors.append(RowError(result.line, "duplicate", f"{phone} is already in this campaign", "phone"))
        elif is_dnc(phone):
            errors.append(RowError(result.line, "dnc", f"{phone} is on a do-not-call list", "phone"))
        else:
            seen.add(phone)
            drafts.append(result)
    return ImportPlan(drafts=tuple(drafts), errors=tuple(errors), total_rows=parsed.total_rows)


def _draft_from_row(
    line: int, columns: list[str], cells: list[str], default_region: str
) -> LeadDraft | RowError:
    if len(cells) > len(columns):
        return RowError(line, "too_many_cells", f"{len(cells)} cells but the header has {len(columns)}")
    values: dict[str, str] = {}
    custom: dict[str, str] = {}
    for column, raw in zip(columns, cells, strict=False):
        if not column:
            continue
        value = raw.strip()
        if "\x00" in value:
            # PostgreSQL text cannot hold NUL: reject the row here, by line, instead of losing the batch.
            name = column.removeprefix("custom:")
            return RowError(line, "nul_character", f"{name} contains a NUL character", name)
        if len(value) > MAX_FIELD_CHARS:
            name = column.removeprefix("custom:")
            return RowError(
                line, "field_too_long", f"{name} is longer than {MAX_FIELD_CHARS} characters", name
            )
        if column.startswith("custom:"):
            if value:
                custom[column.removeprefix("custom:")] = value
        else:
            values[column] = value
    region = (values.get("region") or default_region).upper()
    try:
        number = normalize(values.get("phone", ""), region)
    except InvalidPhoneNumber as exc:
        return RowError(line, f"invalid_phone:{exc.reason_code}", exc.message, "phone")
    grade = values.get("grade", "").upper()
    if grade not in VALID_GRADES:
        return RowError(line, "invalid_grade", f"grade must be A, B or C, not {grade!r}", "grade")
    priority_text = values.get("priority", "") or "0"
    if not re.fullmatch(r"-?\d{1,6}", priority_text):
        return RowError(
            line, "invalid_priority", f"priority must be a whole number, not {priority_text!r}", "priority"
        )
    alt: list[str] = []
    for part in re.split(r"[;,/ ]+", values.get("alt_phones", "")):
        if part:
            try:
                alt.append(normalize(part, region).e164)
            except InvalidPhoneNumber as exc:
                return RowError(line, f"invalid_alt_phone:{exc.reason_code}", exc.message, "alt_phones")
    return LeadDraft(
        line=line,
        phone_e164=number.e164,
        region=number.region_code or region,
        timezone=number.timezone or "",
        name=values.get("name", ""),
        company=values.get("company", ""),
        segment=values.get("segment", "").lower(),
        grade=grade,
        priority=int(priority_text),
        alt_phones=tuple(alt),
        custom=custom,
    )


FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: str) -> str:
    """Neutralise formula injection (`=cmd|…`) when a value is exported to CSV for Excel (OWASP)."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value
