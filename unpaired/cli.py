"""The ``unpaired`` command: parse arguments, validate, call one function. Heavy imports stay inside commands."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


# ----------------------------------------------------------------------------------------------------------
# train


def cmd_train(args) -> int:
    from .config import read_preset, resolve

    run_dir = Path(args.out) if args.out else None
    if args.resume:
        if run_dir is None:
            raise CLIError("--resume needs --out RUN (the run folder to continue)")
        saved = run_dir / "config.yaml"
        if not saved.exists():
            raise CLIError(f"--resume: {saved} not found; is {run_dir} a run folder?")
        preset = read_preset(str(saved))
    else:
        if not args.preset:
            raise CLIError("name a preset or YAML file, e.g. `unpaired train quick --data DIR` (see --help)")
        preset = read_preset(args.preset)
    overrides = list(args.set or [])
    if args.data:
        overrides.append(f"data.root={args.data}")
    if args.device:
        overrides.append(f"train.device={args.device}")
    cfg = resolve(preset, overrides)
    if args.dry_run:
        print(cfg.to_yaml(), end="")
        return 0
    if run_dir is None:
        run_dir = Path("runs") / Path(args.preset).stem
    if not args.resume and (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").iterdir()):
        raise CLIError(f"{run_dir} already holds checkpoints: pass --resume to continue it, or choose another --out")

    from .training import distributed
    from .training.trainer import Trainer

    try:  # under torchrun every process runs this; process 0 alone writes the run folder
        trainer = Trainer(cfg, run_dir, resume=args.resume, progress=not args.no_progress)
        last = trainer.fit()
    finally:
        distributed.cleanup()
    if trainer.dist.is_main:
        print(f"trained {trainer.step} steps; run folder {run_dir} (last checkpoint {last})")
    return 0


# ----------------------------------------------------------------------------------------------------------
# translate


def cmd_translate(args) -> int:
    from .data import check_files
    from .inference import Translator, expand_inputs

    paths = expand_inputs(args.input)
    problems = check_files(paths)
    if problems:
        raise CLIError("cannot read these inputs:\n" + "\n".join(f"  {p}: {why}" for p, why in problems))
    stems = {}
    for p in paths:
        if p.stem in stems and stems[p.stem] != p:
            raise CLIError(f"two inputs would both be written as {p.stem}.png: {stems[p.stem]} and {p}")
        stems[p.stem] = p
    out = Path(args.output)
    translator = Translator.load(args.checkpoint, device=args.device or "cpu", directions=(args.direction,))
    # multi-domain: one sub-folder per --target-domain, OUT/<domain>/<stem>.png; two domains: OUT/<stem>.png
    jobs = [(target, out / target) for target in _targets(args, translator.domains)] or [(None, out)]
    kept = []
    for target, folder in jobs:
        folder.mkdir(parents=True, exist_ok=True)
        direction = None if target else args.direction
        results = translator.translate_files(paths, direction, args.batch_size, target=target)
        n = 0
        for path, result in zip(paths, results):
            result.image.save(folder / f"{path.stem}.png")
            if args.overview and len(kept) < 24 and target == jobs[0][0]:
                kept.append(result)
            if args.save_attention and result.attention is not None:
                if result.masks is not None and result.masks.shape[0] > 1:
                    for k, mask in enumerate(result.masks, start=1):
                        _grey(mask).save(folder / f"{path.stem}_attention_{k}.png")
                _grey(result.attention).save(folder / f"{path.stem}_attention.png")
            n += 1
        print(f"translated {n} image(s) {f'to {target}' if target else args.direction} into {folder}")
    if args.overview:
        from .visualize import overview

        Path(args.overview).parent.mkdir(parents=True, exist_ok=True)
        overview(paths, kept).save(args.overview)
        print(f"overview (input | translation | attention | true mask): {args.overview}")
    return 0


def _targets(args, domains) -> list:
    """The --target-domain names (repeatable, or comma-separated), checked against the model's domains."""
    targets = [t.strip() for value in (args.target_domain or []) for t in value.split(",") if t.strip()]
    if domains is None:
        if targets:
            raise CLIError(f"--target-domain: {args.checkpoint} translates between two domains; use --direction")
        return []
    if not targets:
        raise CLIError(f"{args.checkpoint} is a multi-domain model: name --target-domain (one or more of "
                       f"{', '.join(domains)})")
    for target in targets:
        if target not in domains:
            raise CLIError(f"--target-domain: unknown domain {target!r}; this model knows {', '.join(domains)}")
    return list(dict.fromkeys(targets))


def _grey(array):
    import numpy as np
    from PIL import Image

    return Image.fromarray((np.clip(array, 0, 1) * 255).round().astype(np.uint8), mode="L")


# ----------------------------------------------------------------------------------------------------------
# data


def cmd_data(args) -> int:
    if args.data_command == "synth":
        if args.domains:
            from .data import make_synthetic_domains

            root = make_synthetic_domains(args.dir, args.domains, size=args.size, n_train=args.n_train or 100,
                                          n_test=args.n_test or 10, seed=args.seed)
            print(f"wrote a synthetic {args.domains}-domain set to {root} (train/<domain>/, test/<domain>/)")
            return 0
        from .data import make_synthetic, make_synthetic_stripes

        make = make_synthetic_stripes if args.kind == "stripes" else make_synthetic
        n_train = args.n_train or (400 if args.kind == "stripes" else 200)
        n_test = args.n_test or (60 if args.kind == "stripes" else 30)
        root = make(args.dir, size=args.size, n_train=n_train, n_test=n_test, seed=args.seed)
        print(f"wrote a synthetic two-domain set ({args.kind}) with masks to {root}")
        return 0
    if args.data_command == "check":
        from .data import check_dataset

        report = check_dataset(args.dir)
        bad = [(p, why) for items in report.values() for p, why in items]
        for p, why in bad:
            print(f"{p}: {why}")
        if bad:
            print(f"{len(bad)} problem(s) in {args.dir}")
            return 1
        print(f"{args.dir}: every image is usable")
        return 0
    raise CLIError(f"unknown data command {args.data_command!r}")


# ----------------------------------------------------------------------------------------------------------
# import


def cmd_import(args) -> int:
    from .compat import import_checkpoint

    options = {"domains": args.domains} if args.domains else {}
    run = import_checkpoint(args.format, [Path(p) for p in args.input], Path(args.out), **options)
    print(f"imported {args.format} checkpoint into run folder {args.out} ({run})")
    return 0


# ----------------------------------------------------------------------------------------------------------
# evaluate, export, demo: each lives in its own module


def cmd_evaluate(args) -> int:
    from .metrics.evaluate import run_evaluate

    return run_evaluate(args)


def cmd_compare(args) -> int:
    from .visualize import run_compare

    return run_compare(args)


def cmd_extractor(args) -> int:
    from .metrics.extractor import train_extractor

    info = train_extractor(Path(args.data), Path(args.out), size=args.size, epochs=args.epochs,
                           batch_size=args.batch_size, seed=args.seed)
    print(json.dumps(info, indent=2))
    return 0


def cmd_export(args) -> int:
    from .export import run_export

    return run_export(args)


def cmd_demo(args) -> int:
    try:
        from .demo import run_demo
    except ImportError as e:
        raise CLIError(f"the web demo needs gradio: pip install 'unpaired[demo]' ({e})") from None
    return run_demo(args)


# ----------------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .config import preset_summaries

    parser = argparse.ArgumentParser(
        prog="unpaired", description="Unpaired image-to-image translation with attention.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  unpaired data synth data/synth\n  unpaired train quick --data data/synth --out runs/quick\n"
               "  unpaired translate --checkpoint runs/quick --input data/synth/testA --output out/ --save-attention")
    parser.add_argument("--version", action="version", version=f"unpaired {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    presets = "\n".join(f"  {k:<28} {v}" for k, v in preset_summaries().items())
    p = sub.add_parser("train", help="train a model", formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Train a model from a preset (or a YAML file) on a CycleGAN-layout folder.",
                       epilog=f"presets:\n{presets}\n\nexample:\n  unpaired train quick --data data/synth "
                              f"--set train.steps=500 --set model.ngf=32")
    p.add_argument("preset", nargs="?", help="preset name or YAML file (optional with --resume)")
    p.add_argument("--data", help="dataset folder with trainA/ trainB/ (testA/ testB/ for samples)")
    p.add_argument("--out", help="run folder (default: runs/<preset>)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a setting, e.g. train.lr=1e-4")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its newest checkpoint")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N (same as --set train.device=...)")
    p.add_argument("--dry-run", action="store_true", help="print the resolved configuration and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("translate", help="translate images with a trained model")
    p.add_argument("--checkpoint", required=True, help="run folder, generator .safetensors or step_N.pt")
    p.add_argument("--input", required=True, nargs="+", help="image files, folders or glob patterns")
    p.add_argument("--output", required=True, help="output folder (images named <stem>.png after their input)")
    p.add_argument("--direction", default="AtoB", choices=["AtoB", "BtoA"])
    p.add_argument("--target-domain", action="append", metavar="NAME",
                   help="multi-domain models: the domain to translate to (repeat, or a,b,c, for several: "
                        "one sub-folder OUTPUT/NAME/ each)")
    p.add_argument("--save-attention", action="store_true",
                   help="also write <stem>_attention.png (and each mask as <stem>_attention_<k>.png)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="cpu")
    p.add_argument("--overview", metavar="PNG", help="also write a contact sheet of the first 24 results")
    p.set_defaults(func=cmd_translate)

    p = sub.add_parser("data", help="make or check datasets")
    dsub = p.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)
    s = dsub.add_parser("synth", help="write the synthetic two-domain set with ground-truth masks")
    s.add_argument("dir")
    s.add_argument("--size", type=int, default=64)
    s.add_argument("--kind", choices=["colour", "stripes"], default="colour",
                   help="colour: red <-> blue objects on smooth backgrounds (default); stripes: plain <-> striped "
                        "animals on textured landscapes (the object's texture must change)")
    s.add_argument("--n-train", type=int, help="training images per domain (default 200; stripes 400)")
    s.add_argument("--n-test", type=int, help="paired test scenes (default 30; stripes 60)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--domains", type=int, metavar="N",
                   help="write a multi-domain set of N domains instead (train/<domain>/, test/<domain>/)")
    c = dsub.add_parser("check", help="list every file of a dataset that cannot be used, with the reason")
    c.add_argument("dir")
    p.set_defaults(func=cmd_data)

    from .compat import FORMAT_HELP

    p = sub.add_parser("import", help="turn an official checkpoint into a run folder",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="formats:\n" + "\n".join(f"  {k:<18} {v}" for k, v in FORMAT_HELP.items()))
    p.add_argument("--format", required=True, choices=sorted(FORMAT_HELP))
    p.add_argument("--input", required=True, nargs="+", help="the official file(s)")
    p.add_argument("--out", required=True, help="run folder to write")
    p.add_argument("--domains", metavar="A,B,C", help="multi-domain formats: the domain names in label order "
                                                       "(default domain0, domain1, ...)")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("evaluate", help="score translations of a test split (FID, KID, attention/background)")
    p.add_argument("--checkpoint", required=True, help="run folder (its newest generators) or checkpoint file")
    p.add_argument("--data", required=True, help="dataset folder with testA/ testB/ (and *_masks/ for mask scores)")
    p.add_argument("--split", default="test", help="split prefix: test -> testA/testB (default), train, ...")
    p.add_argument("--direction", default="both", choices=["AtoB", "BtoA", "both"])
    p.add_argument("--metrics", default="fid,kid",
                   help="comma-separated: fid, kid, masks (needs *_masks/), accuracy (needs an extractor file), "
                        "region (needs --region) (default fid,kid)")
    p.add_argument("--region", metavar="FILE.png",
                   help="mask image, white = the part allowed to change (aligned faces: eyes and mouth, see "
                        "scripts/face_region.py); the region metric scores the change outside it")
    p.add_argument("--json", metavar="FILE", help="also write the results to FILE")
    p.add_argument("--inception-weights", metavar="PATH",
                   help="local file of the FID Inception weights (pt_inception-2015-12-05); "
                        "or set UNPAIRED_INCEPTION_WEIGHTS")
    p.add_argument("--feature-extractor", default="inception-v3-compat",
                   help="torch-fidelity feature extractor name (default: the standard FID Inception), or a "
                        ".safetensors file written by `unpaired extractor train`")
    p.add_argument("--kid-subset-size", type=int, help="KID subset size (default: what the test set allows, <= 1000)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("compare", help="one picture of several models' translations (and attention) side by side")
    p.add_argument("--checkpoint", required=True, nargs="+", help="run folders or generator files, one per model")
    p.add_argument("--input", required=True, nargs="+", help="image files, folders or glob patterns")
    p.add_argument("--output", required=True, help="PNG to write")
    p.add_argument("--names", help="comma-separated column names (default: the checkpoints' folder names)")
    p.add_argument("--direction", default="AtoB", choices=["AtoB", "BtoA"])
    p.add_argument("--target-domain", action="append", metavar="NAME",
                   help="multi-domain models: the domain(s) to translate to (a,b,c: one column each per model)")
    p.add_argument("--max-rows", type=int, default=8, help="first N inputs (default 8)")
    p.add_argument("--cell", type=int, default=96, help="pixel size of each picture (default 96)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("extractor", help="train a domain classifier to use as FID/KID feature extractor")
    esub = p.add_subparsers(dest="extractor_command", metavar="EXTRACTOR_COMMAND", required=True)
    e = esub.add_parser("train", help="train a ResNet-18 (no pretrained weights) on a dataset's training split",
                        description="For FID/KID without the standard Inception weights, and for the accuracy "
                                    "metric. Numbers are comparable between models on that dataset only.")
    e.add_argument("--data", required=True, help="trainA/ trainB/ (+ testA/ testB/), or train/<domain>/ (+ test/)")
    e.add_argument("--out", required=True, help="the .safetensors file to write")
    e.add_argument("--size", type=int, default=64, help="input size the classifier sees (default 64)")
    e.add_argument("--epochs", type=int, default=12)
    e.add_argument("--batch-size", type=int, default=64)
    e.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_extractor)

    p = sub.add_parser("export", help="export a generator to ONNX or TorchScript, checked against PyTorch")
    p.add_argument("--checkpoint", required=True, help="run folder, generator .safetensors or step_N.pt")
    p.add_argument("--format", required=True, choices=["onnx", "torchscript"])
    p.add_argument("--output", required=True, help="file to write (a JSON description is written beside it)")
    p.add_argument("--direction", default="AtoB", choices=["AtoB", "BtoA"])
    p.add_argument("--target-domain", metavar="NAME", help="multi-domain models: build this target into the graph "
                   "(default: the target label vector is a second input, 'label')")
    p.add_argument("--size", type=int, help="example input size (default: the training crop size)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset")
    p.add_argument("--tolerance", type=float, default=1e-4, help="largest allowed |exported - PyTorch|")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("demo", help="serve a web demo of a trained model (needs the [demo] extra)")
    p.add_argument("--checkpoint", required=True, help="run folder")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--data", help="dataset folder whose test images serve as examples (default: from the run)")
    p.add_argument("--max-upload-mb", type=float, default=10.0)
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    from .config import ConfigError

    try:
        return args.func(args)
    except (CLIError, ConfigError, FileNotFoundError) as e:
        print(f"unpaired {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # clear one-line messages for the errors users cause; tracebacks for bugs
        from .compat import ImportMismatch
        from .data import BadImageError, UnknownDomainError
        from .metrics.evaluate import EvaluationError
        from .training.trainer import NonFiniteLossError

        if isinstance(e, (BadImageError, NonFiniteLossError, ImportMismatch, UnknownDomainError, EvaluationError)):
            print(f"unpaired {args.command}: error: {e}", file=sys.stderr)
            return 1
        raise
