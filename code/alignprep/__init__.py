"""alignprep: SmartSPIM histology, probe tracks and Neuropixels ephys for the IBL alignment GUIs.

The names below are imported when first used (PEP 562), so that a process needing one module
(the supervisor of ``python -m alignprep``) does not import the whole pipeline first.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .config import PipelineConfig, build_config
    from .orchestration.report import ProcessResult
    from .orchestration.run import run_pipeline, run_pipeline_async

_LAZY = {
    "PipelineConfig": ".config",
    "build_config": ".config",
    "ProcessResult": ".orchestration.report",
    "run_pipeline": ".orchestration.run",
    "run_pipeline_async": ".orchestration.run",
}

__all__ = [
    "PipelineConfig",
    "ProcessResult",
    "__version__",
    "build_config",
    "run_pipeline",
    "run_pipeline_async",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
