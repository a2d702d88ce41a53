"""Hostile input at the edge: JSON that cannot be stored or written out again (lone surrogates,
NaN/Infinity, deep nesting) is a 400 naming the field; ids are ASCII digits; numbers in the query
beyond their range are 400s; mail text that would hold a lone surrogate never breaks an export."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from typing import Any

from postroom.db import tables as t
from tests.conftest import Api, RunningServer
from tests.smtp_support import inbox_address, message, pdf_bytes, rows, send, wait_for
from tests.upload_helpers import form

SURROGATE = '{"metadata": {"note": "a\\ud800b"}}'


async def _send_raw(api: Api, method: str, path: str, body: str | bytes) -> tuple[int, Any]:
    headers = {**api.headers, "Content-Type": "application/json"}
    async with api.session.request(method, api.url(path), data=body, headers=headers) as response:
        return response.status, await response.json(content_type=None)


async def test_lone_surrogates_are_refused_naming_the_field(admin: Api) -> None:
    """A lone surrogate in a value or a key → 400 naming the field; nothing is stored."""
    status, body = await _send_raw(admin, "PATCH", "/queues/1", SURROGATE)
    assert status == 400 and body["code"] == "bad_request", body
    assert body["detail"].startswith("metadata.note:") and "surrogate" in body["detail"]
    status, body = await _send_raw(admin, "PATCH", "/queues/1", '{"metadata": {"\\udfff": 1}}')
    assert status == 400 and body["detail"].startswith("metadata:"), body
    status, body = await _send_raw(admin, "PATCH", "/queues/1", '{"name": "\\ud83d"}')
    assert status == 400 and body["detail"].startswith("name:"), body
    _, queue = await admin.get("/queues/1", expect=200)
    assert queue["metadata"] == {}
    # A whole surrogate pair is one character (U+1F600) and is fine.
    status, queue = await _send_raw(
        admin, "PATCH", "/queues/1", '{"metadata": {"note": "\\ud83d\\ude00"}}'
    )
    assert status == 200 and queue["metadata"] == {"note": "\U0001f600"}


async def test_nan_and_infinity_are_refused(admin: Api) -> None:
    """NaN, Infinity and numbers beyond a double (1e999) are not JSON: 400."""
    for number in ("NaN", "Infinity", "-Infinity", "1e999", "-1e400"):
        status, body = await _send_raw(
            admin, "PATCH", "/queues/1", f'{{"metadata": {{"x": {number}}}}}'
        )
        assert status == 400 and body["code"] == "bad_request", (number, body)
    _, queue = await admin.get("/queues/1", expect=200)
    assert queue["metadata"] == {}


async def test_upload_fields_are_read_as_strictly(admin: Api) -> None:
    """`metadata` and `values` form fields of an upload: surrogates and NaN → 400 naming them."""
    for field, text, named in (
        ("metadata", '{"note": "\\ud800"}', "metadata.note"),
        ("metadata", '{"n": NaN}', "metadata"),
        ("values", '{"upload:note": "\\udc00"}', "values.upload:note"),
        ("values", '{"upload:amount_total": 1e999}', "values"),
    ):
        status, body = await admin.post(
            "/uploads?queue=1", data=form([("a.pdf", pdf_bytes())], {field: text})
        )
        assert status == 400, (field, text, body)
        assert body["detail"].startswith(named), (named, body)


async def test_multipart_text_fields_refuse_nul(admin: Api) -> None:
    """A text field of a multipart body with U+0000 (the raw byte) → 400 naming it (PostgreSQL
    would refuse the lookup with it: a 500 before)."""
    status, body = await admin.post(
        "/emails/import",
        data=form([("m.eml", b"Subject: x\r\n\r\nhi")], {"recipient": "a\x00b@x"}, "raw_message"),
    )
    assert status == 400 and body["detail"].startswith("recipient"), body


async def test_deep_json_is_a_400_even_before_login(anon: Api, admin: Api) -> None:
    """Nesting beyond 64 levels → 400 (the login body too); 64 levels are accepted."""
    deep = '{"username": ' + "[" * 5000 + "]" * 5000 + "}"
    status, body = await _send_raw(anon, "POST", "/auth/login", deep)
    assert status == 400 and "nested deeper" in body["detail"], body
    status, body = await _send_raw(anon, "POST", "/auth/login", "[" * 100_000)
    assert status == 400, body
    too_deep = '{"metadata": ' + '{"a": ' * 64 + "1" + "}" * 64 + "}"
    status, body = await _send_raw(admin, "PATCH", "/queues/1", too_deep)
    assert status == 400 and "nested deeper than 64" in body["detail"], body
    fine = '{"metadata": ' + '{"a": ' * 60 + "1" + "}" * 60 + "}"
    status, body = await _send_raw(admin, "PATCH", "/queues/1", fine)
    assert status == 200, body


async def test_ids_are_ascii_digits_only(admin: Api) -> None:
    """`²` (a digit to isdigit, not to int) and `٣` (Arabic-Indic 3) name no object: 404."""
    for path in ("/users/%C2%B2", "/queues/%D9%A3", "/queues/%D9%A3/export", "/users/%D9%A1"):
        status, body = await admin.get(path)
        assert status == 404 and body["code"] == "not_found", (path, body)
    status, body = await admin.get("/annotations", params={"queue": "\u0663"})
    assert status == 400 and body["detail"].startswith("queue"), body
    status, body = await admin.get("/annotations", params={"queue": "1" * 5000})
    assert status == 200 and body["results"] == [], body


async def test_numbers_out_of_range_in_the_query_are_400(admin: Api) -> None:
    """page and page_size beyond their range (or beyond 64 bits) → 400 naming the parameter."""
    for name in ("page", "page_size"):
        for value in ("99999999999999999999", "9" * 5000, "\u0663", "²"):
            status, body = await admin.get("/queues", params={name: value})
            assert status == 400 and body["detail"].startswith(name), (name, value, body)
    status, body = await admin.get("/queues/1/export", params={"page": "99999999999999999999"})
    assert status == 400 and body["detail"].startswith("page"), body
    # Given twice, a parameter is ambiguous: 400 rather than the first one silently.
    status, body = await admin.get("/queues?page_size=1&page_size=x")
    assert status == 400 and body["detail"].startswith("page_size"), body


async def test_mail_subject_with_escaped_surrogate_exports(
    server: RunningServer, admin: Api
) -> None:
    """A subject whose text decodes to a lone surrogate is stored with U+FFFD instead; every
    export format still answers a complete, parseable document."""
    inbox = await inbox_address(server)
    pdf = [("a.pdf", pdf_bytes(), "application/pdf")]
    raw = message(inbox, subject="PLACEHOLDER", attachments=pdf).as_bytes()
    # Text between encoded words goes through raw-unicode-escape: "\ud800" becomes U+D800;
    # so does an encoded word in the unicode-escape charset.
    subject = b"=?utf-8?q?Invoice?= \\ud800 =?unicode-escape?q?=5Cudfff?="
    await send(server, raw.replace(b"PLACEHOLDER", subject, 1), recipients=[inbox])
    (annotation,) = await rows(server, t.annotations)

    async def reviewed() -> bool:
        _, body = await admin.get(f"/annotations/{annotation.id}")
        return bool(body["status"] == "to_review")

    await wait_for(reviewed)
    (email,) = await rows(server, t.emails)
    status, body = await admin.get(f"/emails/{email.id}")
    assert status == 200 and "\ufffd" in body["subject"], body
    for fmt in ("json", "xml", "csv"):
        async with admin.session.get(
            admin.url("/queues/1/export"), params={"format": fmt}, headers=admin.headers
        ) as response:
            assert response.status == 200, fmt
            data = await response.read()
        text = data.decode("utf-8")
        assert "\ufffd" in text, fmt
        if fmt == "json":
            json.loads(text)
        elif fmt == "xml":
            ET.fromstring(data)
        else:
            assert len(list(csv.reader(io.StringIO(text)))) == 2
    status, _ = await admin.patch(f"/annotations/{annotation.id}", json={"metadata": {"a": 1}})
    assert status == 200
