"""sha256 of the files under a folder: how tests compare two runs' products byte for byte."""

from __future__ import annotations

import hashlib
from pathlib import Path

from alignprep import outputs

#: Run records: they describe one run (times, paths, executor, slice), never the products.
RUN_RECORDS = frozenset(
    {
        outputs.RUN_REPORT_NAME,
        "processing.json",
        outputs.EFFECTIVE_CONFIG_NAME,
        outputs.VALIDATION_REPORT_NAME,
        outputs.LOG_FILE_NAME,
        outputs.QC_PAGE_NAME,  # the QC page: the run summary, with each item's time
        outputs.QUALITY_CONTROL_NAME,  # its pending statuses are dated by the figures' run
    }
)


def tree_digests(root: Path, products_only: bool = True) -> dict[str, str]:
    """{relative path: sha256} of every file under ``root``.

    With ``products_only`` the run records and the re-run state (``.alignprep/``) are left out.
    """
    out = {}
    for path in sorted(Path(root).rglob("*")):
        rel = path.relative_to(root)
        if not path.is_file():
            continue
        if products_only and (path.name in RUN_RECORDS or outputs.STATE_DIR in rel.parts):
            continue
        out[str(rel)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out
