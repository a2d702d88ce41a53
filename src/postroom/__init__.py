"""Postroom: a self-hosted document intake gateway that speaks the public Rossum REST API."""

from __future__ import annotations

__version__ = "0.1.0"
