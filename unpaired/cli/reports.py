"""The commands that read a trained model: ``evaluate``, ``compare``, ``extractor``, ``export``, ``demo``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .commands import CLIError, _targets


def cmd_evaluate(args) -> int:
    from ..inference import Translator
    from ..metrics import report
    from ..metrics.evaluate import evaluate, format_table

    directions = ("AtoB", "BtoA") if args.direction == "both" else (args.direction,)
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    translator = Translator.load(args.checkpoint, device=args.device, directions=directions)
    results = evaluate(translator, Path(args.data), split=args.split, directions=directions, metrics=metrics,
                       feature_extractor=args.feature_extractor, inception_weights=args.inception_weights,
                       kid_subset_size=args.kid_subset_size, batch_size=args.batch_size, device=args.device,
                       region=args.region)
    print(format_table(results))
    checkpoint = Path(args.checkpoint)
    run_dir = checkpoint if checkpoint.is_dir() else None
    step = max(card.step for card in translator.cards.values())
    for row in results:
        row.update(checkpoint=str(checkpoint), step=step, data=str(args.data))
        if run_dir is not None:
            report(run_dir, row)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


def cmd_compare(args) -> int:
    """One column per model (multi-domain models: per model and target domain)."""
    from types import SimpleNamespace

    from ..data import check_files
    from ..image_inputs import expand_inputs
    from ..inference import Translator
    from ..visualize import comparison

    paths = expand_inputs(args.input)[: args.max_rows]
    problems = check_files(paths)
    if problems:
        raise CLIError("cannot read these inputs:\n" + "\n".join(f"  {p}: {why}" for p, why in problems))
    names = args.names.split(",") if args.names else [Path(c).name for c in args.checkpoint]
    if len(names) != len(args.checkpoint):
        raise CLIError(f"--names gives {len(names)} names for {len(args.checkpoint)} checkpoints")
    results = {}
    for name, checkpoint in zip(names, args.checkpoint):
        translator = Translator.load(checkpoint, device=args.device, directions=(args.direction,))
        targets = _targets(SimpleNamespace(target_domain=args.target_domain, checkpoint=checkpoint), translator.domains)
        for target in targets or [None]:
            column = name if target is None else f"{name} {target}"
            results[column] = list(translator.translate_files(paths, args.direction, args.batch_size, target=target))
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    comparison(paths, results, cell=args.cell).save(args.output)
    what = "to " + ", ".join(targets) if targets else args.direction
    print(f"compared {len(names)} model(s) on {len(paths)} image(s) {what}: {args.output}")
    return 0


def cmd_extractor(args) -> int:
    from ..metrics.extractor import train_extractor

    info = train_extractor(Path(args.data), Path(args.out), size=args.size, epochs=args.epochs,
                           batch_size=args.batch_size, seed=args.seed)
    print(json.dumps(info, indent=2))
    return 0


def cmd_export(args) -> int:
    """Load the generator of ``args.direction`` (its model card says its sizes), export, check, describe."""
    import dataclasses

    from ..export import ExportCheckError, OnnxGenerator, _diff_text, description_path, export_generator
    from ..inference import Translator
    from ..models.base import MULTI

    if args.format == "onnx":
        try:
            import onnx  # noqa: F401
            import onnxruntime  # noqa: F401
        except ImportError as e:
            print(f"unpaired export: error: ONNX export needs onnx and onnxruntime: pip install 'unpaired[export]' "
                  f"({e})", file=sys.stderr)
            return 2
    translator = Translator.load(args.checkpoint, device="cpu", directions=(args.direction,))
    domains, target = translator.domains, None
    direction = MULTI if domains is not None else args.direction
    try:
        generator = translator.generator(direction)
        if args.target_domain:  # a multi-domain model with its target built in
            target = translator.label_for(args.target_domain)
    except (KeyError, ValueError) as e:
        print(f"unpaired export: error: --target-domain: {e.args[0]}" if args.target_domain else
              f"unpaired export: error: {e.args[0]}", file=sys.stderr)
        return 2
    if isinstance(generator, OnnxGenerator):
        print("unpaired export: error: --checkpoint is already an exported file; export from a run folder, "
              "a generator .safetensors or a step_N.pt", file=sys.stderr)
        return 2
    card = dataclasses.replace(translator.cards[direction], target_domain=args.target_domain or None)
    size = args.size or card.input_size.train or card.input_size.fixed
    if not size:
        raise CLIError(f"{args.checkpoint}: its model card names no training size; pass --size N")
    try:
        info = export_generator(generator, args.format, args.output, size, opset=args.opset,
                                tolerance=args.tolerance, meta=card, target=target,
                                source={"checkpoint": str(args.checkpoint)})
    except ExportCheckError as e:
        print(f"unpaired export: FAILED: {e}", file=sys.stderr)
        return 1
    check = info["check"]
    shapes = ", ".join("×".join(map(str, s)) for s in check["input_shapes"])
    print(f"checked {args.format} ({check['runtime']}) against PyTorch on inputs {shapes}: "
          f"max abs difference {check['max_diff']:.2e} ({_diff_text(check)}) <= tolerance {args.tolerance:g}")
    print(f"exported {info['model']} {info['direction']} to {args.output} (outputs: "
          f"{', '.join(o['name'] for o in info['outputs'])}); description in {description_path(Path(args.output))}")
    return 0


def cmd_demo(args) -> int:
    """``unpaired demo --checkpoint RUN [--host H] [--port N] [--data DIR] [--max-upload-mb MB]``."""
    try:
        from ..demo import build_demo, find_examples, launch_demo
    except ImportError as e:
        raise CLIError(f"the web demo needs gradio: pip install 'unpaired[demo]' ({e})") from None
    from ..inference import Translator

    translator = Translator.load(args.checkpoint, device=args.device)
    run_dir = Path(args.checkpoint) if Path(args.checkpoint).is_dir() else None
    examples = find_examples(run_dir, args.data, directions=list(translator.generators), domains=translator.domains)
    if args.data and not examples:
        where = "test/<domain>/" if translator.domains else "testA/ or testB/"
        raise FileNotFoundError(f"--data {args.data}: no images in {where}")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {args.host}: anyone who can reach this address can use the demo")
    demo = build_demo(translator, examples, args.max_upload_mb)
    print(f"demo of {args.checkpoint} ({', '.join(translator.domains or translator.generators)}; "
          f"{len(examples)} examples) "
          f"on http://{args.host}:{args.port}  (Ctrl+C to stop)")
    launch_demo(demo, args.host, args.port, args.max_upload_mb, block=True)
    return 0
