"""The content step's tree and value normalisation (pure functions of schema + values)."""

from __future__ import annotations

import pytest

from postroom.domain.annotation_content import NODE_ID_SPAN, build_content, datapoints, normalize

SCHEMA = [
    {
        "category": "section",
        "id": "s",
        "children": [
            {
                "category": "datapoint",
                "id": "subject",
                "type": "string",
                "rir_field_names": ["email_header:subject", "upload:subject"],
            },
            {
                "category": "datapoint",
                "id": "kind",
                "type": "enum",
                "default_value": "EUR",
                "options": [{"value": "eur", "label": "Euro"}],
                "rir_field_names": [],
            },
            {
                "category": "datapoint",
                "id": "due",
                "type": "date",
                "format": "D/M/YYYY",
                "rir_field_names": ["upload:due"],
            },
            {"category": "datapoint", "id": "go", "type": "button"},
            {
                "category": "multivalue",
                "id": "rows",
                "min_occurrences": 2,
                "children": {
                    "category": "tuple",
                    "id": "row",
                    "children": [{"category": "datapoint", "id": "qty", "type": "number"}],
                },
            },
        ],
    }
]


def test_first_available_rir_field_name_wins_and_defaults_apply() -> None:
    """A datapoint takes the first of its rir_field_names present, else its default_value."""
    content = build_content(
        SCHEMA,
        {
            "upload:subject": "from upload",
            "email_header:subject": "from mail",
            "upload:due": "3/2/2024",
        },
        annotation_id=7,
        annotation_url="http://h/api/v1/annotations/7",
    )
    nodes = {dp["schema_id"]: dp for dp in datapoints(content)}
    assert nodes["subject"]["content"]["value"] == "from mail"
    assert nodes["kind"]["content"]["value"] == "EUR"
    assert nodes["kind"]["content"]["normalized_value"] == "eur"
    assert nodes["due"]["content"]["normalized_value"] == "2024-02-03"
    assert nodes["go"]["content"] is None and nodes["go"]["validation_sources"] == ["NA"]
    rows = content[0]["children"][4]
    assert rows["category"] == "multivalue" and len(rows["children"]) == 2
    assert rows["children"][0]["category"] == "tuple"


def test_node_ids_are_stable_and_unique_per_annotation() -> None:
    """Building twice gives the same ids; another annotation's ids never collide."""

    def ids(annotation_id: int) -> list[int]:
        content = build_content(SCHEMA, {}, annotation_id=annotation_id, annotation_url="u")
        found: list[int] = []

        def walk(node: dict) -> None:  # type: ignore[type-arg]
            found.append(node["id"])
            for child in node.get("children", []):
                walk(child)

        for section in content:
            walk(section)
        return found

    assert ids(3) == ids(3)
    assert len(set(ids(3))) == len(ids(3))
    assert min(ids(4)) > max(ids(3)) and min(ids(3)) > 3 * NODE_ID_SPAN


@pytest.mark.parametrize(
    ("value", "fmt", "expected"),
    [
        ("1 234,50", "# ##0,#", "1234.5"),
        ("1,234.50", "#,##0.#", "1234.5"),
        ("1.234,5", None, "1234.5"),
        ("1,234", None, "1234"),
        ("12,5", None, "12.5"),
        ("-7", None, "-7"),
        ("1200", None, "1200"),
        ("abc", None, None),
        ("", None, None),
    ],
)
def test_number_normalisation(value: str, fmt: str | None, expected: str | None) -> None:
    """Numbers normalise to JSON number text whatever the thousands/decimal separators."""
    assert normalize({"type": "number", "format": fmt}, value) == expected


@pytest.mark.parametrize(
    ("value", "fmt", "expected"),
    [
        ("23/1/2019", "D/M/YYYY", "2019-01-23"),
        ("01/23/2019", "MM/DD/YYYY", "2019-01-23"),
        ("2019-01-23", None, "2019-01-23"),
        ("23.01.2019", "YYYY-MM-DD", "2019-01-23"),
        ("soon", None, None),
    ],
)
def test_date_normalisation(value: str, fmt: str | None, expected: str | None) -> None:
    """Dates in the datapoint's format (or ISO / common forms) normalise to ISO dates."""
    assert normalize({"type": "date", "format": fmt}, value) == expected
