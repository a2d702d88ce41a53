"""File names from clients and mailers: decoded as the RFCs say, never a path, never empty."""

from __future__ import annotations

import pytest

from postroom.errors import BadRequest
from postroom.intake.names import (
    DEFAULT_FILE_NAME,
    attachment_name,
    clean_file_name,
    filename_from_disposition,
)


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ('attachment; filename="invoice 1.pdf"', "invoice 1.pdf"),
        ("attachment; filename*=UTF-8''faktura%20%C4%8D.pdf", "faktura č.pdf"),
        ('form-data; name="content"; filename="a.pdf"; filename*=UTF-8\'\'b.pdf', "b.pdf"),
        ("attachment", None),
    ],
)
def test_disposition_names(header: str, name: str | None) -> None:
    assert filename_from_disposition(header) == name


def test_clean_file_name_keeps_the_name_but_drops_control_characters() -> None:
    assert clean_file_name("in\x00voice.pdf") == "invoice.pdf"
    assert clean_file_name(None) == DEFAULT_FILE_NAME
    assert clean_file_name("  ") == DEFAULT_FILE_NAME
    with pytest.raises(BadRequest, match="filename"):
        clean_file_name("x" * 10_000)


@pytest.mark.parametrize("raw", ["../../etc/passwd", "..\\..\\boot.ini", "/abs/path.pdf"])
def test_attachment_names_never_hold_a_path_separator(raw: str) -> None:
    name = attachment_name(raw, "attachment-1")
    assert "/" not in name and "\\" not in name


@pytest.mark.parametrize("raw", [None, "", ".", "..", "  "])
def test_attachment_names_fall_back_when_nothing_is_left(raw: str | None) -> None:
    assert attachment_name(raw, "attachment-1") == "attachment-1"
