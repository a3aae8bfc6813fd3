"""Lead-file parsing: encodings, headers in two languages, per-line errors, dedupe, DNC, formula injection."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from dialer.lead_import import (
    ImportPlan,
    UnreadableFile,
    decode_text,
    plan_import,
    read_rows,
    spreadsheet_safe,
)


def plan(
    data: bytes, filename: str = "leads.csv", existing: set[str] | None = None, dnc: set[str] | None = None
) -> ImportPlan:
    blocked = dnc or set()
    return plan_import(
        read_rows(data, filename),
        default_region="CN",
        existing_phones=existing or set(),
        is_dnc=lambda n: n in blocked,
    )


CHINESE_CSV = (
    "公司名称,联系人,手机,意向等级,行业\n"
    "北京星河科技有限公司,张伟,138 1234 5678,a,软件\n"
    "上海蓝海物流,李娜,+86 139-0000-1111,B,物流\n"
    "坏行,王五,12345,C,制造\n"
    "广州某某,赵六,010-62345678,D,餐饮\n"
    "重复公司,张伟,13812345678,,软件\n"
)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_chinese_headers_in_every_excel_encoding(encoding: str) -> None:
    result = plan(CHINESE_CSV.encode(encoding))
    assert [d.phone_e164 for d in result.drafts] == ["+8613812345678", "+8613900001111"]
    first = result.drafts[0]
    assert (first.company, first.name, first.grade, first.custom) == (
        "北京星河科技有限公司",
        "张伟",
        "A",
        {"行业": "软件"},
    )
    assert first.timezone == "Asia/Shanghai" and first.region == "CN"
    by_line = {e.line: e for e in result.errors}
    assert by_line[4].code.startswith("invalid_phone") and by_line[4].field == "phone"
    assert by_line[5].code == "invalid_grade"
    assert by_line[6].code == "duplicate"
    assert result.total_rows == 5


def test_tab_separated_english_and_existing_and_dnc() -> None:
    data = (
        b"Phone\tName\tCompany\n+1 415 555 2671\tAnn\tAcme\n13800001111\tBob\tBeta\n13800002222\tCy\tGamma\n"
    )
    result = plan(data, existing={"+8613800001111"}, dnc={"+8613800002222"})
    assert [d.phone_e164 for d in result.drafts] == ["+14155552671"]
    assert result.drafts[0].region == "US"
    assert [(e.line, e.code) for e in result.errors] == [(3, "duplicate"), (4, "dnc")]


def test_broken_rows_reported_rest_imported() -> None:
    data = (
        "phone,name\n13811112222,ok\n13811113333,a,extra,cells\n,\n" + "13811114444," + "x" * 2000 + "\n"
        "13811115555,fine\n"
    ).encode()
    result = plan(data)
    assert [d.phone_e164 for d in result.drafts] == ["+8613811112222", "+8613811115555"]
    assert [(e.line, e.code) for e in result.errors] == [(3, "too_many_cells"), (5, "field_too_long")]


def test_whole_file_problems_are_one_clear_error() -> None:
    with pytest.raises(UnreadableFile, match="no phone column"):
        plan(b"name,company\nA,B\n")
    with pytest.raises(UnreadableFile, match="empty"):
        plan(b"")
    with pytest.raises(UnreadableFile, match="xlsx"):
        plan(b"not a zip", "leads.xlsx")


def test_xlsx_numbers_stored_as_floats() -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["电话", "姓名"])
    sheet.append([13812345678.0, "张三"])
    sheet.append(["bad", "李四"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    result = plan(buffer.getvalue(), "名单.xlsx")
    assert [d.phone_e164 for d in result.drafts] == ["+8613812345678"]
    assert [e.line for e in result.errors] == [3]


def test_formula_injection_is_kept_literal_and_neutralised_on_export() -> None:
    result = plan(b"phone,name\n13812345678,=cmd|' /C calc'!A0\n")
    assert result.drafts[0].name == "=cmd|' /C calc'!A0"
    assert spreadsheet_safe(result.drafts[0].name) == "'=cmd|' /C calc'!A0"
    assert spreadsheet_safe("张三") == "张三"


def test_undecodable_bytes() -> None:
    with pytest.raises(UnreadableFile):
        decode_text(b"\xff\xfe\xfa\x80\x81phone")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    try:
        result = plan(b"phone,name\n" + data)
    except UnreadableFile:
        return
    assert len(result.drafts) + len(result.errors) == result.total_rows
