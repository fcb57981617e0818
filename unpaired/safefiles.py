"""Reading files a user did not write without running or allocating what they say: safetensors headers (no
tensor is read) and tensor files in a format that cannot carry code, checked against a schema."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Dict, Tuple

__all__ = ["BadFileError", "MAX_HEADER_BYTES", "safetensors_header"]


class BadFileError(ValueError):
    """A file that is not what it claims to be (a bad header, tensors that do not fit): the message names it."""

#: the largest safetensors header read (safetensors' own limit is 100 MB; ours hold a few hundred tensors)
MAX_HEADER_BYTES = 16 * 1024 * 1024


def safetensors_header(path: Path) -> Dict[str, Tuple[str, Tuple[int, ...]]]:
    """name -> (dtype, shape) from a ``.safetensors`` file's header, without reading the tensors; a header that
    is too large, runs past the end of the file or is not the format's JSON is refused naming the file."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        raw = f.read(8)
        n = struct.unpack("<Q", raw)[0] if len(raw) == 8 else -1
        if n < 2 or n > min(MAX_HEADER_BYTES, size - 8):
            raise BadFileError(f"{path}: not a safetensors file (header of {n} bytes in a file of {size} bytes; "
                             f"at most {MAX_HEADER_BYTES} read)")
        try:
            header = json.loads(f.read(n))
            return {k: (v["dtype"], tuple(int(d) for d in v["shape"])) for k, v in header.items()
                    if k != "__metadata__"}
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            raise BadFileError(f"{path}: not a safetensors file (bad header: {e})") from None
