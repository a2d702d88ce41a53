"""Playwright driving Debian's Chromium (never a downloaded browser): the launch settings, and
the mark that skips browser tests — with the reason — only where Chromium is not installed.
CI installs it (`.ci/run`), so there they run."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

CHROMIUM = os.environ.get("POSTROOM_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

requires_chromium = pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason=f"Chromium not found at {CHROMIUM} (apt-get install chromium; .ci/run does)",
)


@asynccontextmanager
async def browser_page(viewport: tuple[int, int] = (1280, 900)) -> AsyncIterator[Any]:
    """A fresh page of a headless Chromium (its own cookie jar), closed afterwards."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(
                viewport={"width": viewport[0], "height": viewport[1]}
            )
            yield await context.new_page()
        finally:
            await browser.close()
