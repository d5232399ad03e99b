"""Deployment settings, read from environment variables (one place for every page and worker).

| variable            | meaning                                              | default |
|---------------------|------------------------------------------------------|---------|
| SAMLAB_RUNS_DIR     | run store directory (SQLite + checkpoints)           | runs    |
| SAMLAB_DATA         | dataset root directory                               | data    |
| SAMLAB_MAX_RUNS     | training runs allowed at once                        | 1       |
| SAMLAB_MAX_JOBS     | lab jobs computing at once (sam_core.workers)        | cores/2 |
| SAMLAB_DEVICE       | auto / cpu / cuda / cuda:N                           | auto    |
| SAMLAB_READ_ONLY    | 1/true: hide launch, stop and delete (class hosting) | false   |
| SAMLAB_MAX_EPOCHS   | most epochs one launch from the page may ask for     | 200     |
| SAMLAB_COMPILE      | torch.compile large 2-D sweeps: auto / on / off      | auto    |
| SAMLAB_STEP_CACHE   | directory of the compiled sweep steps kept between   | below   |
|                     | processes (sam_core.fused_store), or off             |         |
| SAMLAB_HOSTED       | 1: served to others (errors: a short message in the  | auto    |
|                     | browser, details in the server log); 0: local; auto: |         |
|                     | hosted when read-only or listening beyond loopback   |         |

SAMLAB_STEP_CACHE defaults to ``$XDG_CACHE_HOME/samlab/steps`` (``~/.cache/samlab/steps``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    runs_dir: Path
    data_dir: Path
    max_concurrent_runs: int
    device: str
    read_only: bool
    max_epochs: int = 200
    compile: str = "auto"
    hosted: bool | None = None  # None: decide from read_only and the server's address (ui.common.hosted)
    step_cache: Path | None = None  # compiled sweep steps on disk (sam_core.fused_store); None: off

    def torch_device(self) -> torch.device:
        """The device every lab computes on; a CUDA device that is not there is a clear error, not a crash."""
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        dev = torch.device(self.device)
        if dev.type == "cuda":
            n = torch.cuda.device_count() if torch.cuda.is_available() else 0
            if (dev.index or 0) >= n:
                raise ValueError(
                    f"SAMLAB_DEVICE={self.device}: this machine has "
                    + (f"{n} CUDA device(s) (cuda:0…cuda:{n - 1})" if n else "no CUDA device")
                    + "; use auto or cpu"
                )
        if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ValueError(f"SAMLAB_DEVICE={self.device}: MPS is not available here; use auto or cpu")
        return dev


def get_settings() -> Settings:
    """Current settings (re-read each call, so tests and pages see environment changes)."""
    try:
        max_runs = int(os.environ.get("SAMLAB_MAX_RUNS", "1"))
    except ValueError:
        raise ValueError("SAMLAB_MAX_RUNS must be an integer in [1, 64]") from None
    if not 1 <= max_runs <= 64:
        raise ValueError(f"SAMLAB_MAX_RUNS must be an integer in [1, 64], got {max_runs}")
    try:
        max_epochs = int(os.environ.get("SAMLAB_MAX_EPOCHS", "200"))
    except ValueError:
        raise ValueError("SAMLAB_MAX_EPOCHS must be an integer in [1, 100000]") from None
    if not 1 <= max_epochs <= 100000:
        raise ValueError(f"SAMLAB_MAX_EPOCHS must be an integer in [1, 100000], got {max_epochs}")
    device = os.environ.get("SAMLAB_DEVICE", "auto").strip() or "auto"
    if device != "auto" and not (device == "cpu" or device.startswith("cuda") or device == "mps"):
        raise ValueError(f"SAMLAB_DEVICE must be auto, cpu, cuda, cuda:N or mps, got {device!r}")
    compile_mode = os.environ.get("SAMLAB_COMPILE", "auto").strip().lower() or "auto"
    compile_mode = {"1": "on", "true": "on", "yes": "on", "0": "off", "false": "off", "no": "off"}.get(
        compile_mode, compile_mode
    )
    if compile_mode not in ("auto", "on", "off"):
        raise ValueError(f"SAMLAB_COMPILE must be auto, on or off, got {compile_mode!r}")
    hosted_raw = os.environ.get("SAMLAB_HOSTED", "auto").strip().lower() or "auto"
    if hosted_raw not in ("auto", "1", "true", "yes", "on", "0", "false", "no", "off"):
        raise ValueError(f"SAMLAB_HOSTED must be 1, 0 or auto, got {hosted_raw!r}")
    hosted = None if hosted_raw == "auto" else _flag(hosted_raw)
    step_cache_raw = os.environ.get("SAMLAB_STEP_CACHE", "").strip()
    if step_cache_raw.lower() in ("off", "0", "false", "no", "none"):
        step_cache = None
    elif step_cache_raw:
        step_cache = Path(step_cache_raw).expanduser().resolve()
    else:  # the user's cache; off for a user without a home directory (expanduser gives "~" back)
        home = os.path.expanduser("~")
        cache_home = os.environ.get("XDG_CACHE_HOME", "").strip() or (
            os.path.join(home, ".cache") if home != "~" else ""
        )
        step_cache = Path(cache_home, "samlab", "steps").resolve() if cache_home else None
    return Settings(
        runs_dir=Path(os.environ.get("SAMLAB_RUNS_DIR", "runs")).expanduser().resolve(),
        data_dir=Path(os.environ.get("SAMLAB_DATA", "data")).expanduser().resolve(),
        max_concurrent_runs=max_runs,
        device=device,
        read_only=_flag(os.environ.get("SAMLAB_READ_ONLY")),
        max_epochs=max_epochs,
        compile=compile_mode,
        hosted=hosted,
        step_cache=step_cache,
    )


def confine(path: str | os.PathLike, root: str | os.PathLike, field: str = "path") -> Path:
    """Resolve `path` (relative paths are taken under `root`) and refuse anything outside `root`."""
    root_p = Path(root).expanduser().resolve()
    p = Path(path).expanduser()
    p = (root_p / p).resolve() if not p.is_absolute() else p.resolve()
    if p != root_p and root_p not in p.parents:
        raise ValueError(f"{field} must lie inside {root_p}, got {p}")
    return p
