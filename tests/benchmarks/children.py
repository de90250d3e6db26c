"""Run one measurement in a fresh Python process (its imports, caches and peak memory its own)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def run_child(script: str, kind: str, *args: str) -> tuple[dict, str]:
    """``python SCRIPT --child KIND ARGS``: the JSON object its last stdout line holds, and its
    stderr; exits with the tail of stderr when the child fails."""
    out = subprocess.run(
        [sys.executable, str(Path(script)), "--child", kind, *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1]), out.stderr
