"""Test data for .ci/schemathesis.sh that generated input alone cannot make: a document uploaded
to the first queue (annotations to confirm, reject, cancel) and an e-mail imported into its
inbox (whose address no generator can guess).

    python .ci/schemathesis_seed.py <base URL> <token>
"""

from __future__ import annotations

import base64
import json
import sys
import urllib.request
import uuid

PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[3 0 R]"
    b"/Count 1>>endobj 3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 9 9]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


def main(base: str, token: str) -> None:
    auth = {"Authorization": f"Bearer {token}"}

    def post(path: str, parts: list[tuple[str, str | None, bytes]]) -> None:
        boundary = uuid.uuid4().hex
        body = b""
        for name, filename, data in parts:
            disposition = f'form-data; name="{name}"'
            if filename:
                disposition += f'; filename="{filename}"'
            head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n"
            body += head.encode() + data + b"\r\n"
        body += f"--{boundary}--\r\n".encode()
        headers = {**auth, "Content-Type": f"multipart/form-data; boundary={boundary}"}
        urllib.request.urlopen(urllib.request.Request(base + path, body, headers)).read()

    post("/api/v1/uploads?queue=1", [("content", "seed.pdf", PDF)])
    request = urllib.request.Request(base + "/api/v1/inboxes", None, auth)
    address = json.load(urllib.request.urlopen(request))["results"][0]["email"]
    message = (
        f"From: Seed <seed@example.com>\r\nTo: {address}\r\nSubject: seed\r\n"
        "Message-ID: <seed@example.com>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: application/pdf; name=seed.pdf\r\n"
        "Content-Disposition: attachment; filename=seed.pdf\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode() + base64.encodebytes(PDF)
    post(
        "/api/v1/emails/import",
        [("raw_message", "seed.eml", message), ("recipient", None, address.encode())],
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
