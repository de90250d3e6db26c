"""alignprep: SmartSPIM histology, probe tracks and Neuropixels ephys for the IBL alignment GUIs."""

from __future__ import annotations

__version__ = "0.1.0"

from .config import PipelineConfig, build_config
from .orchestration.report import ProcessResult
from .orchestration.run import run_pipeline, run_pipeline_async

__all__ = [
    "PipelineConfig",
    "ProcessResult",
    "__version__",
    "build_config",
    "run_pipeline",
    "run_pipeline_async",
]
