"""Large images on the CPU: whole-image inference against tiled inference (unpaired.tiling), per model family.

Each cell (family, side, mode) runs in a fresh subprocess: ``Translator.translate`` of one side×side image (a
face photo of /work/shared/data upscaled bicubically: real-looking content), paper-size generator (ngf 64),
random weights (the training initialisation, N(0, 0.02), seed 0), budget ``--max-memory``. Reported: seconds
(the whole call: planning, the probe, statistics and tiles), s/megapixel, the subprocess's peak RSS
(its VmHWM: ``ru_maxrss`` would also count the memory of the process that started it, folded in at ``exec``),
and, where the whole-image cell of the same family and side ran, the max and mean absolute
difference of the uint8 output images (0-255). The output of each cell is kept as .npy in ``--work``.

    python benchmarks/translate_large.py --cells attentiongan:1000:whole attentiongan:1000:auto
    python benchmarks/translate_large.py --cells attentiongan:8000:auto --max-memory 2G
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PHOTO = REPO.parent / "shared" / "data" / "faces-neutral2smile" / "testA" / "al_gore_0001.jpg"


def peak_rss_mb() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) // 1024


def run_cell(family: str, side: int, mode: str, max_memory: str, work: Path, attention: bool = False,
             lean: bool = True, stream: bool = True) -> dict:
    """One measurement, in this process (called in a fresh subprocess by ``main``). ``lean=False``: the
    reference without ``lean_inference`` (plain layers, contiguous weights); ``stream=False``: the exact mode by
    one pass per normalisation layer (``run_exact``) instead of streaming the encoder through files."""
    import contextlib

    import torch
    from PIL import Image

    import unpaired.inference
    from unpaired.inference import Translator
    from unpaired.models import get_model
    from unpaired.models.base import InputSize
    from unpaired.nn.init import init_weights
    from unpaired.tiling import parse_bytes

    if not lean:
        unpaired.inference.lean_inference = contextlib.nullcontext
    if not stream:  # the module (``unpaired.tiling.plan`` as an attribute is the function of that name)
        sys.modules["unpaired.tiling.plan"].streamable = lambda generator: False
    spec = get_model(family)
    fields = set(spec.args.__dataclass_fields__)
    args = spec.args(**({"img_size": 256} if "img_size" in fields else {}))
    torch.manual_seed(0)
    generator = init_weights(spec.build_generator(args).eval(), "normal", 0.02)
    fixed = 256 if family == "ugatit" else None
    card = {"model": family, "args": vars(args), "direction": "AtoB",
            "input_size": InputSize(train=256, multiple=4, fixed=fixed)}
    lines = []
    translator = Translator({"AtoB": generator}, {"AtoB": card}, max_memory=parse_bytes(max_memory),
                            tiling_mode=mode, progress=lines.append)
    pixels = np.asarray(Image.open(PHOTO).convert("RGB").resize((side, side), Image.BICUBIC))  # as `translate`
    start = time.perf_counter()                                                          # holds it: no PIL copy
    result = translator.translate(pixels, attention=attention)
    seconds = time.perf_counter() - start
    np.save(work / f"{family}-{side}-{mode}.npy", np.asarray(result.image))
    return {"family": family, "side": side, "mode": mode, "attention": attention, "lean": lean, "stream": stream,
            "seconds": round(seconds, 1),
            "s_per_mp": round(seconds / (side * side / 1e6), 2), "peak_rss_mb": peak_rss_mb(),
            "plan": lines[0] if lines else "whole image"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", nargs="+", required=True, help="family:side:mode (mode auto|whole|fast|exact)")
    parser.add_argument("--max-memory", default="2G")
    parser.add_argument("--work", default="/tmp/translate_large")
    parser.add_argument("--jsonl", help="append each cell's row here")
    parser.add_argument("--attention", action="store_true", help="keep the attention maps (full-size uint8)")
    parser.add_argument("--no-lean", action="store_true", help="without lean_inference (the reference)")
    parser.add_argument("--no-stream", action="store_true", help="exact mode by one pass per normalisation layer")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # family:side:mode, run in this process
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if args.one:
        family, side, mode = args.one.split(":")
        print(json.dumps(run_cell(family, int(side), mode, args.max_memory, work, args.attention, not args.no_lean,
                                  not args.no_stream)))
        return
    for cell in args.cells:
        proc = subprocess.run([sys.executable, __file__, "--cells", cell, "--one", cell, "--max-memory",
                               args.max_memory, "--work", str(work), *(["--attention"] * args.attention),
                               *(["--no-lean"] * args.no_lean), *(["--no-stream"] * args.no_stream)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            row = {"cell": cell, "error": (proc.stderr.strip().splitlines() or ["killed"])[-1],
                   "returncode": proc.returncode}
        else:
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            family, side, mode = cell.split(":")
            whole = work / f"{family}-{side}-whole.npy"
            if mode != "whole" and whole.exists():
                diff = np.abs(np.load(whole).astype(np.int16) - np.load(work / f"{family}-{side}-{mode}.npy"))
                row.update(max_abs=int(diff.max()), mean_abs=round(float(diff.mean()), 3))
        print(json.dumps(row), flush=True)
        if args.jsonl:
            with open(args.jsonl, "a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
