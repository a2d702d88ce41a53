"""Reading a stored file's pages: PDF page count (pypdf), image size and frames (Pillow).

These functions block (they parse files) and run in a thread (`asyncio.to_thread`). A file that
cannot be read raises `ImportFailed` with a message for the user: the reference lists
"a malformed document file" as the cause of `failed_import`.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

from postroom.pipeline import ImportFailed

# pypdf logs every recoverable oddity of real-world PDFs at WARNING; those are not our problem.
logging.getLogger("pypdf").setLevel(logging.ERROR)

# A decompression bomb is refused, not rendered: Pillow's guard, set explicitly.
MAX_IMAGE_PIXELS = 200_000_000
# Sizes are kept for this many pages; the count is always exact.
MAX_PAGE_SIZES = 1000


@dataclass(frozen=True)
class Pages:
    count: int
    sizes: list[PageInfo]


@dataclass(frozen=True)
class PageInfo:
    number: int  # 1-based
    width: float | None = None  # PDF points or image pixels
    height: float | None = None

    def as_json(self) -> dict[str, object]:
        return {"number": self.number, "width": self.width, "height": self.height}


def pdf_pages(path: Path) -> Pages:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        # A file object, not the path: given a path pypdf reads the whole file into memory.
        with path.open("rb") as stream, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = PdfReader(stream, strict=False)
            if reader.is_encrypted and not _opens_without_password(reader):
                raise ImportFailed("The PDF is protected by a password and cannot be read.")
            count = len(reader.pages)
            sizes = []
            for index in range(min(count, MAX_PAGE_SIZES)):
                box = reader.pages[index].mediabox
                sizes.append(PageInfo(index + 1, float(box.width), float(box.height)))
    except ImportFailed:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise ImportFailed(f"The file is not a readable PDF ({_short(exc)}).") from None
    except RecursionError:
        raise ImportFailed("The file is not a readable PDF (its structure is too deep).") from None
    if count == 0:
        raise ImportFailed("The PDF has no pages.")
    return Pages(count, sizes)


def _opens_without_password(reader: object) -> bool:
    try:
        return bool(reader.decrypt(""))  # type: ignore[attr-defined]
    except Exception:  # pypdf raises several types for unsupported encryption
        return False


def image_pages(path: Path) -> Pages:
    """Every frame of an image (a multi-page TIFF has several) with its size in pixels."""
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                count = getattr(image, "n_frames", 1)
                sizes = []
                for index in range(min(count, MAX_PAGE_SIZES)):
                    image.seek(index)
                    sizes.append(PageInfo(index + 1, float(image.width), float(image.height)))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImportFailed(
            f"The image is larger than {MAX_IMAGE_PIXELS} pixels and was not opened."
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImportFailed(f"The file is not a readable image ({_short(exc)}).") from None
    return Pages(count, sizes)


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[:200]
