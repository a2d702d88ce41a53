"""Stored bytes are served so a browser never runs them: active types (HTML, SVG, XML, scripts)
as attachments, passive ones (PDF, images, plain text) inline, and always with `nosniff` and a
Content-Security-Policy that forbids everything (sandboxed)."""

from __future__ import annotations

from tests.conftest import Api
from tests.smtp_support import pdf_bytes, png_bytes
from tests.upload_helpers import form

HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b"<script>alert(1)</script></svg>"
)
XML = b'<?xml version="1.0"?><invoice><script>alert(1)</script></invoice>'


async def _content_headers(admin: Api, name: str, data: bytes) -> dict[str, str]:
    status, body = await admin.post("/documents", data=form([(name, data)]))
    assert status == 201, body
    async with admin.session.get(body["content"], headers=admin.headers) as response:
        assert response.status == 200
        assert await response.read() == data
        return dict(response.headers)


async def test_active_types_are_attachments(admin: Api) -> None:
    """HTML, SVG and XML: `attachment`, nosniff, CSP `default-src 'none'; sandbox`."""
    for name, data in (("page.html", HTML), ("logo.svg", SVG), ("invoice.xml", XML)):
        headers = await _content_headers(admin, name, data)
        assert headers["Content-Disposition"].startswith("attachment;"), (name, headers)
        assert headers["X-Content-Type-Options"] == "nosniff"
        csp = headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "sandbox" in csp, csp


async def test_passive_types_stay_inline(admin: Api) -> None:
    """PDF and PNG are shown in place, still under the same CSP and nosniff."""
    for name, data in (("invoice.pdf", pdf_bytes()), ("scan.png", png_bytes(400, 400))):
        headers = await _content_headers(admin, name, data)
        assert headers["Content-Disposition"].startswith("inline;"), (name, headers)
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in headers["Content-Security-Policy"]
