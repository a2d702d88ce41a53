"""The request digest behind Idempotency-Key: independent of how the bytes were chunked, and
different whenever a part's headers, bytes or order differ."""

from __future__ import annotations

from postroom.api.request_digest import RequestDigest

FILE = {"Content-Disposition": 'form-data; name="content"; filename="a.pdf"'}
META = {"Content-Disposition": 'form-data; name="metadata"'}


def _digest(parts: list[tuple[dict[str, str], list[bytes]]]) -> str:
    digest = RequestDigest()
    digest.field("POST")
    for headers, chunks in parts:
        digest.begin_part(headers)
        for chunk in chunks:
            digest.data(chunk)
    return digest.hexdigest()


def test_chunking_does_not_matter() -> None:
    assert _digest([(FILE, [b"abcdef"]), (META, [b"{}"])]) == _digest(
        [(FILE, [b"ab", b"", b"cdef"]), (META, [b"{", b"}"])]
    )


def test_bytes_headers_and_order_matter() -> None:
    base = _digest([(FILE, [b"abcdef"]), (META, [b"{}"])])
    assert base != _digest([(FILE, [b"abcdeg"]), (META, [b"{}"])])
    assert base != _digest([(META, [b"{}"]), (FILE, [b"abcdef"])])
    assert base != _digest([(FILE, [b"abc"]), (META, [b"def{}"])])
    renamed = {"Content-Disposition": FILE["Content-Disposition"].replace("a.pdf", "b.pdf")}
    assert base != _digest([(renamed, [b"abcdef"]), (META, [b"{}"])])


def test_raw_body_is_one_part() -> None:
    raw = RequestDigest()
    raw.data(b"abc")
    raw.data(b"def")
    whole = RequestDigest()
    whole.data(b"abcdef")
    assert raw.hexdigest() == whole.hexdigest()
