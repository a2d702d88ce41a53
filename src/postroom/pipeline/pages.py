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


@dataclass(frozen=True)
class PageInfo:
    number: int  # 1-based
    width: float | None = None  # PDF points or image pixels
    height: float | None = None

    def as_json(self) -> dict[str, object]:
        return {"number": self.number, "width": self.width, "height": self.height}


def pdf_pages(path: Path) -> list[PageInfo]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = PdfReader(path, strict=False)
            if reader.is_encrypted and not _opens_without_password(reader):
                raise ImportFailed("The PDF is protected by a password and cannot be read.")
            pages = []
            for number, page in enumerate(reader.pages, start=1):
                box = page.mediabox
                pages.append(PageInfo(number, float(box.width), float(box.height)))
    except ImportFailed:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise ImportFailed(f"The file is not a readable PDF ({_short(exc)}).") from None
    except RecursionError:
        raise ImportFailed("The file is not a readable PDF (its structure is too deep).") from None
    if not pages:
        raise ImportFailed("The PDF has no pages.")
    return pages


def _opens_without_password(reader: object) -> bool:
    try:
        return bool(reader.decrypt(""))  # type: ignore[attr-defined]
    except Exception:  # pypdf raises several types for unsupported encryption
        return False


def image_pages(path: Path) -> list[PageInfo]:
    """Every frame of an image (a multi-page TIFF has several) with its size in pixels."""
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                frames = getattr(image, "n_frames", 1)
                pages = []
                for index in range(frames):
                    image.seek(index)
                    pages.append(PageInfo(index + 1, float(image.width), float(image.height)))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImportFailed(
            f"The image is larger than {MAX_IMAGE_PIXELS} pixels and was not opened."
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImportFailed(f"The file is not a readable image ({_short(exc)}).") from None
    return pages


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[:200]
