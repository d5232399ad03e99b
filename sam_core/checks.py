"""The one-line range check the labs' configs validate their fields with."""

from __future__ import annotations

from typing import Any


def need(ok: bool, name: str, allowed: str, value: Any) -> None:
    """Raise ``ValueError("<name> must be in <allowed>, got <value>")`` unless ``ok``."""
    if not ok:
        raise ValueError(f"{name} must be in {allowed}, got {value!r}")
