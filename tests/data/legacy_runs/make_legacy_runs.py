"""How tests/data/legacy_runs/ was made: tiny run folders written by unpaired at commit 737f584 (before the model
card), with the outputs that code gave on fixed inputs. Kept as a record; run it only with that commit checked
out (``git worktree add /tmp/old 737f584``): ``python tests/data/legacy_runs/make_legacy_runs.py OUT``.

Each run: ngf 4, 32 px, 2 steps on the 32 px synthetic set; only config.yaml and generators/ are kept (the
training checkpoints are dropped for size; U-GAT-IT full keeps only its AtoB generator).
``expected.safetensors``: ``<direction>.<field>`` for the fields the model fills, for ``inputs.safetensors``'
``x32`` (1×3×32×32) and ``x30x36`` (1×3×30×36, padded/resized inside the Translator).
"""

import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from unpaired.config import resolve
from unpaired.data import make_synthetic
from unpaired.inference import Translator, run_any_size
from unpaired.training.trainer import Trainer

COMMON = ["model.ngf=4", "model.ndf=4", "model.n_blocks=1", "data.load_size=36", "data.crop_size=32",
          "data.num_workers=0", "train.batch_size=1", "train.steps=2", "train.device=cpu", "train.log_every=1",
          "train.sample_every=100", "train.checkpoint_every=100", "train.pool_size=2"]
RUNS = {
    "cyclegan": ["model.name=cyclegan"],
    "attentiongan": ["model.name=attentiongan", "model.n_masks=3"],
    "ugatit-light": ["model.name=ugatit-light", "model.n_layers_global=4", "model.n_layers_local=3"],
    "ugatit": ["model.name=ugatit", "model.img_size=32", "model.n_layers_global=4",
               "model.n_layers_local=3"],
}


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    data = make_synthetic(out / "_synth", size=32, n_train=4, n_test=2, seed=0)
    g = torch.Generator().manual_seed(0)
    inputs = {"x32": torch.rand(1, 3, 32, 32, generator=g) * 2 - 1, "x30x36": torch.rand(1, 3, 30, 36, generator=g) * 2 - 1}
    save_file(inputs, str(out / "inputs.safetensors"))
    for name, extra in RUNS.items():
        run = out / name
        cfg = resolve({}, [*COMMON, *extra, f"data.root={data}"])
        Trainer(cfg, run, progress=False).fit()
        for junk in ("samples", "log.txt", "stats.jsonl", "tensorboard"):
            p = run / junk
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
        t = Translator.load(run)
        expected = {}
        for direction in ("AtoB", "BtoA"):
            for key, x in inputs.items():
                o = run_any_size(t.generator(direction), x)
                for field in ("image", "attention", "heatmap"):
                    v = getattr(o, field)
                    if v is not None:
                        expected[f"{direction}.{key}.{field}"] = v.contiguous()
        if name == "ugatit":  # its MLP is tied to the size, the largest: keep one direction
            expected = {k: v for k, v in expected.items() if k.startswith("AtoB.")}
            for suffix in (".safetensors", ".json"):
                (run / "generators" / f"BtoA{suffix}").unlink()
        save_file(expected, str(run / "expected.safetensors"))
        shutil.rmtree(run / "checkpoints")
    shutil.rmtree(out / "_synth")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
