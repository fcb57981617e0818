"""The commands that make and use runs: ``train``, ``translate``, ``data``, ``import`` (each a ``cmd_<name>(args)``)."""

from __future__ import annotations

import sys
from pathlib import Path


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


# ----------------------------------------------------------------------------------------------------------
# train


def cmd_train(args) -> int:
    from ..config import check_input_size, read_preset, resolve

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
    check_input_size(cfg)
    if args.dry_run:
        print(cfg.to_yaml(), end="")
        return 0
    if run_dir is None:
        run_dir = Path("runs") / Path(args.preset).stem
    from ..runfolder import list_checkpoints

    if not args.resume and list_checkpoints(run_dir):  # temporary files of a killed write do not count
        raise CLIError(f"{run_dir} already holds checkpoints: pass --resume to continue it, or choose another --out")

    from ..data import train_dataset
    from ..data.sources import complete_config
    from ..training import distributed
    from ..training.trainer import Trainer

    complete_config(cfg)  # the settings and the data checked, every image decoded, before anything is written:
    dataset = train_dataset(cfg)  # a refused run leaves no run folder behind
    try:  # under torchrun every process runs this; process 0 alone writes the run folder
        trainer = Trainer(cfg, run_dir, resume=args.resume, progress=not args.no_progress, dataset=dataset)
        last = trainer.fit()
    finally:
        distributed.cleanup()
    if trainer.dist.is_main:
        print(f"trained {trainer.step} steps; run folder {run_dir} (last checkpoint {last})")
    return 0


# ----------------------------------------------------------------------------------------------------------
# translate


def cmd_translate(args) -> int:
    """Translate every readable input; each one that cannot be read or translated gets one line (its path and
    why) and the exit status 1. Outputs are written atomically: nothing half-written is left behind."""
    from ..image_inputs import expand_inputs
    from ..inference import Translator

    paths = expand_inputs(args.input)
    stems = {}
    for p in paths:
        if p.stem in stems and stems[p.stem] != p:
            raise CLIError(f"two inputs would both be written as {p.stem}.png: {stems[p.stem]} and {p}")
        stems[p.stem] = p
    out = Path(args.output)
    translator = Translator.load(args.checkpoint, device=args.device or "cpu", directions=(args.direction,))
    _set_limits(translator, args)
    fixed = translator.input_size(None if translator.domains else args.direction).fixed
    if fixed:
        print(f"note: this generator takes only {fixed}x{fixed} images (full U-GAT-IT): each input is resized to "
              f"{fixed}x{fixed} (bilinear) and its translation resized back to the input's size")
    # multi-domain: one sub-folder per --target-domain, OUT/<domain>/<stem>.png; two domains: OUT/<stem>.png
    jobs = [(target, out / target) for target in _targets(args, translator.domains)] or [(None, out)]
    kept, failed = [], {}
    for target, folder in jobs:
        _save(folder, None)
        direction = None if target else args.direction
        n = 0
        for path, result in _translate_each(translator, paths, direction, args.batch_size, target, failed,
                                            attention=args.save_attention or bool(args.overview)):
            _save(folder / f"{path.stem}.png", result.image)
            if args.overview and len(kept) < 24 and target == jobs[0][0]:
                kept.append((path, result))
            if args.save_attention and result.attention is not None:
                if result.masks is not None and result.masks.shape[0] > 1:
                    for k, mask in enumerate(result.masks, start=1):
                        _save(folder / f"{path.stem}_attention_{k}.png", _grey(mask))
                _save(folder / f"{path.stem}_attention.png", _grey(result.attention))
            n += 1
        print(f"translated {n} image(s) {f'to {target}' if target else args.direction} into {folder}")
    if args.overview and kept:
        from ..visualize import overview

        _save(Path(args.overview), overview([p for p, _ in kept], [r for _, r in kept]))
        print(f"overview (input | translation | attention | true mask): {args.overview}")
    if failed:
        print(f"unpaired translate: {len(failed)} of {len(paths)} input(s) failed (listed above)", file=sys.stderr)
        return 1
    return 0


def _set_limits(translator, args) -> None:
    """--max-memory, --tiling and --max-pixels onto the translator (and the image reader); tiling is reported."""
    import os

    from ..tiling import parse_bytes

    try:
        translator.max_memory = parse_bytes(args.max_memory)
    except ValueError as e:
        raise CLIError(str(e)) from None
    translator.tiling_mode, translator.progress = args.tiling, print
    if args.max_pixels is not None:
        if args.max_pixels < 1:
            raise CLIError(f"--max-pixels {args.max_pixels}: must be at least 1")
        os.environ["UNPAIRED_MAX_PIXELS"] = str(args.max_pixels)


def _translate_each(translator, paths, direction, batch_size, target, failed, attention=True):
    """(path, Translation) for each input that reads and translates; the others go into ``failed`` (path ->
    reason), each printed once as one line."""
    import numpy as np

    from ..data import BadImageError, load_rgb

    def fail(path, why):
        if path not in failed:
            failed[path] = why
            print(f"{path}: {why}", file=sys.stderr)

    for start in range(0, len(paths), batch_size):
        chunk = []
        for path in paths[start:start + batch_size]:
            try:
                chunk.append((path, np.asarray(load_rgb(path))))  # the PIL image (4 B/px) freed at once
            except BadImageError as e:
                fail(path, str(e)[len(f"{path}: "):] if str(e).startswith(f"{path}: ") else str(e))
        named, images = [p for p, _ in chunk], [image for _, image in chunk]
        del chunk

        def report(i, error, images=images):  # one line per image that fails; the others go on
            fail(named[i], _why_not(error, images[i]))

        results = translator.translate_batch(images, direction, target=target, attention=attention,
                                             names=[str(p) for p in named], on_error=report)
        del images, report  # the inputs are not needed while the outputs are written (8000²: 192 MB)
        yield from ((path, result) for path, result in zip(named, results) if result is not None)


def _why_not(error: Exception, image) -> str:
    """One line: why an H×W×3 image could not be translated (out of memory, or too small for the network)."""
    from ..tiling.stream import FeatureFileError

    height, width = image.shape[:2]
    if isinstance(error, FeatureFileError):
        return str(error)
    reason = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
    if isinstance(error, MemoryError) or "alloc" in reason.lower() or "memory" in reason.lower():
        return (f"out of memory translating a {width}x{height} image (lower --max-memory to translate "
                f"it in smaller tiles; {reason})")
    return f"cannot translate a {width}x{height} image: too small for this generator ({reason})"


def _save(path: Path, image) -> None:
    """Write a PNG atomically (``image`` None: make the folder); a read-only folder or a full disk is a one-line
    error naming the path."""
    from ..runfolder import atomic_write

    try:
        if image is None:
            path.mkdir(parents=True, exist_ok=True)
        else:
            atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))
    except OSError as e:
        msg = e.strerror or str(e)
        raise CLIError(msg if str(path) in msg else f"cannot write {path}: {msg}") from None


def _targets(args, domains) -> list:
    """The --target-domain names (repeatable, or comma-separated), checked against the model's domains."""
    from ..models.multidomain import split_names

    targets = [t for value in (args.target_domain or []) for t in split_names(value)]
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
    from ..visualize import grey_image

    return grey_image(array)


# ----------------------------------------------------------------------------------------------------------
# data


def cmd_data(args) -> int:
    if args.data_command == "synth":
        if args.domains:
            from ..data import make_synthetic_domains

            root = make_synthetic_domains(args.dir, args.domains, size=args.size, n_train=args.n_train or 100,
                                          n_test=args.n_test or 10, seed=args.seed)
            print(f"wrote a synthetic {args.domains}-domain set to {root} (train/<domain>/, test/<domain>/)")
            return 0
        from ..data import make_synthetic, make_synthetic_stripes

        make = make_synthetic_stripes if args.kind == "stripes" else make_synthetic
        n_train = args.n_train or (400 if args.kind == "stripes" else 200)
        n_test = args.n_test or (60 if args.kind == "stripes" else 30)
        root = make(args.dir, size=args.size, n_train=n_train, n_test=n_test, seed=args.seed)
        print(f"wrote a synthetic two-domain set ({args.kind}) with masks to {root}")
        return 0
    if args.data_command == "download":
        from ..data.download import DownloadError, download_dataset

        try:
            download_dataset(args.name, Path(args.dir), sha256=args.sha256, keep_archive=args.keep_archive)
        except DownloadError as e:
            raise CLIError(str(e)) from None
        except ImportError as e:
            raise CLIError(f"{e.name or e}: not installed; pip install 'unpaired[download]'") from None
        return 0
    if args.data_command == "check":
        bad, n_files = [], 0
        for root in map(Path, args.dir):
            problems, n = check_tree(root)
            bad += problems
            n_files += n
        for p, why in bad:
            print(f"{p}: {why}")
        if bad:
            print(f"{len(bad)} problem(s) in {', '.join(args.dir)} ({n_files} file(s) read)")
            return 1
        print(f"{', '.join(args.dir)}: every one of the {n_files} image(s) is usable")
        return 0
    raise CLIError(f"unknown data command {args.data_command!r}")


def check_tree(root: Path) -> tuple:
    """``(problems, n_files)``: every file in ``root`` and its sub-folders, read as an image (hidden ones skipped);
    for a training root (``trainA/``... or ``train/``) also its layout. A plain folder of photos is just read."""
    import os

    from ..data import check_folder

    if not root.is_dir():
        return [(root, "not a folder")], 0
    problems, n_files = [], 0
    for folder, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        problems += check_folder(folder)
        n_files += sum(not f.startswith(".") for f in files)
    if any((root / s).is_dir() for s in ("trainA", "trainB", "testA", "testB")):  # CycleGAN layout
        problems += [(root / s, "missing folder (a training root needs trainA/ and trainB/)")
                     for s in ("trainA", "trainB") if not (root / s).is_dir()]
    elif (root / "train").is_dir():  # multi-domain layout
        if sum(p.is_dir() for p in (root / "train").iterdir()) < 2:
            problems.append((root / "train", "a multi-domain root needs at least two folders train/<domain>/"))
    elif n_files:
        print(f"{root}: no trainA/ trainB/ or train/<domain>/: read as a plain folder of images")
    else:
        problems.append((root, "no files found"))
    return problems, n_files


# ----------------------------------------------------------------------------------------------------------
# import


def cmd_import(args) -> int:
    from ..compat import import_checkpoint

    options = {"domains": args.domains} if args.domains else {}
    if args.tf_smoothing:
        options["tf_smoothing"] = args.tf_smoothing
    run = import_checkpoint(args.format, [Path(p) for p in args.input], Path(args.out), **options)
    print(f"imported {args.format} checkpoint into run folder {args.out} ({run})")
    return 0
