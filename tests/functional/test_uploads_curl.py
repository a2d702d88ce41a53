"""The curl commands of the reference, run with the real curl binary against the service."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, Api, RunningServer
from tests.upload_helpers import QUEUE_ID, id_of, pdf_bytes, png_bytes, wait_for_annotation

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


async def curl(*args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    """Run curl; returns (HTTP status, JSON body)."""
    proc = await asyncio.create_subprocess_exec(
        "curl", "-sS", "-w", "\n%{http_code}", *args, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out
    body, _, code = out.decode().rpartition("\n")
    return int(code), json.loads(body)


async def test_curl_multipart_with_basic_auth(
    admin: Api, server: RunningServer, tmp_path: Path
) -> None:
    """`curl -u user:pass -F content=@a.pdf -F content=@b.png -F metadata=… -F values=…` → 201,
    two results reaching to_review with the metadata and value applied."""
    (tmp_path / "a.pdf").write_bytes(pdf_bytes())
    (tmp_path / "b.png").write_bytes(png_bytes())
    status, body = await curl(
        "-u",
        f"{ADMIN_USER}:{ADMIN_PASSWORD}",
        "-F",
        f"content=@{tmp_path / 'a.pdf'}",
        "-F",
        f"content=@{tmp_path / 'b.png'}",
        "-F",
        'metadata={"project":"x"}',
        "-F",
        'values={"upload:note":"y"}',
        f"{server.api_url}/queues/{QUEUE_ID}/upload",
    )
    assert status == 201, body
    assert len(body["results"]) == 2
    for result in body["results"]:
        annotation = await wait_for_annotation(admin, result["annotation"])
        assert annotation["status"] == "to_review"
        assert annotation["metadata"] == {"project": "x"}


async def test_curl_data_binary_keeps_the_utf8_name(
    admin: Api, server: RunningServer, tmp_path: Path
) -> None:
    """`curl --data-binary @f.pdf …/upload/Fa%C4%8Dtura%20%C4%8D.1.pdf` stores `Fačtura č.1.pdf`."""
    (tmp_path / "f.pdf").write_bytes(pdf_bytes())
    status, body = await curl(
        "-u",
        f"{ADMIN_USER}:{ADMIN_PASSWORD}",
        "--data-binary",
        f"@{tmp_path / 'f.pdf'}",
        f"{server.api_url}/queues/{QUEUE_ID}/upload/Fa%C4%8Dtura%20%C4%8D.1.pdf",
    )
    assert status == 201, body
    _, document = await admin.get(f"/documents/{id_of(body['document'])}")
    assert document["original_file_name"] == "Fačtura č.1.pdf"


async def test_curl_upload_with_rfc5987_header_and_reject_identical(
    server: RunningServer, tmp_path: Path
) -> None:
    """The reference's `/uploads?queue=…&reject_identical=true` with `filename*=utf-8''…`:
    202 the first time, 409 the second."""
    (tmp_path / "f.pdf").write_bytes(pdf_bytes())
    args = (
        "-u",
        f"{ADMIN_USER}:{ADMIN_PASSWORD}",
        "-H",
        "Content-Disposition: attachment; filename*=utf-8''document%20%F0%9F%8E%81.pdf",
        "--data-binary",
        f"@{tmp_path / 'f.pdf'}",
        f"{server.api_url}/uploads?queue={QUEUE_ID}&reject_identical=true",
    )
    status, body = await curl(*args)
    assert status == 202, body
    assert body["url"].startswith(server.api_url + "/tasks/")
    status, body = await curl(*args)
    assert status == 409, body
    assert "document 🎁.pdf" in body["detail"]
