"""Metrics of translations: FID/KID (through torch-fidelity) and attention/background scores (where
ground-truth masks exist). Metrics depend on ``Translator``, never on the trainer.

Results are appended to ``RUN/metrics.jsonl`` by :func:`report`, one JSON object per line.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Dict


def report(run_dir: Path, result: Dict[str, Any]) -> Path:
    """Append ``result`` (plus a timestamp) to ``run_dir/metrics.jsonl``."""
    path = Path(run_dir) / "metrics.jsonl"
    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), **result}
    with path.open("a") as f:
        f.write(json.dumps(record, sort_keys=False) + "\n")
    return path
