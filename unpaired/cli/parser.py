"""The argument parser of the ``unpaired`` command: every subcommand, its options and its help."""

from __future__ import annotations

import argparse

from .commands import cmd_data, cmd_import, cmd_train, cmd_translate
from .reports import cmd_compare, cmd_demo, cmd_evaluate, cmd_export, cmd_extractor


class _Help(argparse.RawDescriptionHelpFormatter):
    """Descriptions and examples as written; an option's default is appended to its help unless the help says it."""

    def _fill_text(self, text, width, indent):  # prose lines wrapped; indented lines (presets, examples) kept
        import textwrap

        return "\n".join(line if line[:1].isspace() or len(line) <= width else
                         textwrap.fill(line, width, initial_indent=indent, subsequent_indent=indent)
                         for line in text.splitlines())

    def _get_help_string(self, action):
        text = action.help or ""
        if action.option_strings and action.default not in (None, False, argparse.SUPPRESS) and "default" not in text:
            text += " (default: %(default)s)"
        return text


def _command(sub, name: str, purpose: str, examples, description: str = "", epilog: str = ""):
    """A subcommand with its one-line purpose, a description and real examples (lines `unpaired ...`)."""
    return sub.add_parser(name, help=purpose, formatter_class=_Help,
                          description=description or purpose[0].upper() + purpose[1:] + ".",
                          epilog=(epilog + "\n\n" if epilog else "") + "examples:\n"
                                 + "\n".join(f"  {e}" for e in examples))


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__
    from ..config import preset_summaries

    parser = argparse.ArgumentParser(
        prog="unpaired", description="Unpaired image-to-image translation with attention.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  unpaired data synth data/synth\n  unpaired train quick --data data/synth --out runs/quick\n"
               "  unpaired translate --checkpoint runs/quick --input data/synth/testA --output out/ --save-attention")
    parser.add_argument("--version", action="version", version=f"unpaired {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    summaries = preset_summaries()
    width = max(map(len, summaries)) + 1
    presets = "\n".join(f"  {k:<{width}} {v}" for k, v in summaries.items())
    p = _command(sub, "train", "train a model from a preset (or a YAML file) on a folder of images", [
        "unpaired train quick --data data/synth --out runs/quick",
        "unpaired train quick --data data/synth --out runs/quick --set train.steps=500 --set model.ngf=32",
        "unpaired train quick --data data/synth --out runs/quick --resume",
        "unpaired train horse2zebra-attentiongan --data data/horse2zebra --device cuda --dry-run"],
        description="Train a model from a preset (or a YAML file) on a dataset folder: trainA/ trainB/ (testA/ "
                    "testB/ for samples), or train/<domain>/ for multi-domain models. Every setting can be changed "
                    "with --set section.key=value; --dry-run prints them all.",
        epilog=f"presets:\n{presets}")
    p.add_argument("preset", nargs="?", help="preset name (listed below) or YAML file; optional with --resume")
    p.add_argument("--data", help="dataset folder with trainA/ trainB/ (testA/ testB/ for samples)")
    p.add_argument("--out", help="run folder (default: runs/<preset>)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a setting, e.g. train.lr=1e-4 (repeat for several; --dry-run lists every key)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its newest checkpoint")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (same as --set train.device=...; default: the preset's, auto)")
    p.add_argument("--dry-run", action="store_true", help="print the resolved configuration and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (the log still goes to RUN/log.txt)")
    p.set_defaults(func=cmd_train)

    p = _command(sub, "translate", "translate images with a trained model", [
        "unpaired translate --checkpoint runs/quick --input data/synth/testA --output out/ --save-attention",
        "unpaired translate --checkpoint runs/quick --input 'photos/*.jpg' --output out/ --direction BtoA",
        "unpaired translate --checkpoint runs/faces-multi --input face.png --output out/ --target-domain happy,sad",
        "unpaired translate --checkpoint runs/quick --input big.png --output out/ --max-memory 1G --tiling exact"],
        description="Translate image files, folders or globs of any size and mode with a run folder (its newest "
                    "generators) or a generator file; each output is OUTPUT/<stem>.png. An input that cannot be "
                    "read or translated gets one line naming it and why; the others are translated (exit status 1).")
    p.add_argument("--checkpoint", required=True, help="run folder, generator .safetensors or step_N.pt")
    p.add_argument("--input", required=True, nargs="+", help="image files, folders or glob patterns")
    p.add_argument("--output", required=True, help="output folder (images named <stem>.png after their input)")
    p.add_argument("--direction", default="AtoB", choices=["AtoB", "BtoA"],
                   help="two-domain models: AtoB translates domain A (trainA) images to B, BtoA the reverse")
    p.add_argument("--target-domain", action="append", metavar="NAME",
                   help="multi-domain models: the domain to translate to (repeat, or a,b,c, for several: "
                        "one sub-folder OUTPUT/NAME/ each)")
    p.add_argument("--save-attention", action="store_true",
                   help="also write <stem>_attention.png (and each mask as <stem>_attention_<k>.png)")
    p.add_argument("--batch-size", type=int, default=8, help="images translated at once (more: faster, more memory)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps")
    p.add_argument("--overview", metavar="PNG", help="also write a contact sheet of the first 24 results")
    p.add_argument("--max-memory", default="2G", metavar="SIZE",
                   help="peak resident memory of the command (default 2G; it needs ~0.75G itself): an image whose "
                        "whole-image inference would need more is translated in tiles (e.g. 1500M, 4G)")
    p.add_argument("--tiling", default="auto", choices=["auto", "whole", "fast", "exact"],
                   help="auto (default): whole image when it fits --max-memory, else exact tiles, the encoder "
                        "streamed through feature files in TMPDIR (fast tiles where TMPDIR lacks the room); fast: "
                        "statistics from a shrunk copy (docs/benchmarks.md: its error); exact: equals whole-image "
                        "inference; whole: never tile")
    p.add_argument("--max-pixels", type=int, metavar="N",
                   help="refuse images declaring more than N pixels before decoding them (default: "
                        "UNPAIRED_MAX_PIXELS or 89478485)")
    p.set_defaults(func=cmd_translate)

    p = _command(sub, "data", "make, download or check datasets", [
        "unpaired data synth data/synth", "unpaired data download horse2zebra data/horse2zebra",
        "unpaired data check data/horse2zebra"])
    dsub = p.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)
    s = _command(dsub, "synth", "write a synthetic dataset with ground-truth masks (no download)", [
        "unpaired data synth data/synth", "unpaired data synth data/stripes --kind stripes",
        "unpaired data synth data/hues --domains 3"],
        description="Write a synthetic two-domain set with ground-truth masks into DIR (trainA/ trainB/ testA/ "
                    "testB/ and *_masks/): red <-> blue objects (colour) or plain <-> striped animals (stripes); "
                    "with --domains N, a multi-domain set (train/<domain>/, test/<domain>/).")
    s.add_argument("dir", metavar="DIR", help="folder to write (created)")
    s.add_argument("--size", type=int, default=64, help="image side in pixels")
    s.add_argument("--kind", choices=["colour", "stripes"], default="colour",
                   help="colour: red <-> blue objects on smooth backgrounds (default); stripes: plain <-> striped "
                        "animals on textured landscapes (the object's texture must change)")
    s.add_argument("--n-train", type=int, help="training images per domain (default 200; stripes 400)")
    s.add_argument("--n-test", type=int, help="paired test scenes (default 30; stripes 60)")
    s.add_argument("--seed", type=int, default=0, help="random seed: the same seed writes the same images")
    s.add_argument("--domains", type=int, metavar="N",
                   help="write a multi-domain set of N domains instead (train/<domain>/, test/<domain>/; default "
                        "100 training and 10 test images per domain)")
    from ..data.download import BASE_URL_ENV, DATASETS

    d = dsub.add_parser("download", help="download a standard unpaired dataset by name (needs the [download] extra)",
                        formatter_class=_Help,
                        description="Download NAME.zip (resumable: run the same command again after an interruption), "
                                    "check its sha256 where known, unpack trainA/ trainB/ testA/ testB/ into DIR and "
                                    "record the source, licence and sha256 in DIR/SOURCE.json.",
                        epilog="datasets:\n" + "\n".join(f"  {k:<24} {v.domains}" for k, v in DATASETS.items())
                               + f"\n\nmirror: set {BASE_URL_ENV}=URL (files URL/NAME.zip)"
                                 "\nexamples:\n  unpaired data download horse2zebra data/horse2zebra\n"
                                 "  unpaired data download maps data/maps --keep-archive")
    d.add_argument("name", metavar="NAME", help="dataset name (listed below)")
    d.add_argument("dir", metavar="DIR", help="folder to unpack into")
    d.add_argument("--sha256", metavar="HEX", help="the archive's expected sha256 (refused if it differs)")
    d.add_argument("--keep-archive", action="store_true", help="keep DIR/.download/NAME.zip after unpacking")
    c = dsub.add_parser("check", help="list every file of a dataset or photo folder that cannot be used, with the reason",
                        formatter_class=_Help,
                        description="Read every file in each DIR and its sub-folders as an image and list each one "
                                    "that cannot be used, with the reason (exit status 1 if any). For a training "
                                    "root (trainA/ trainB/ testA/ testB/, or train/<domain>/) also check the layout.",
                        epilog="examples:\n  unpaired data check data/horse2zebra\n  unpaired data check ~/photos\n"
                               "  unpaired data check data/a data/b")
    c.add_argument("dir", nargs="+", metavar="DIR", help="a dataset root or any folder of images")
    p.set_defaults(func=cmd_data)

    from ..compat import FORMAT_HELP

    p = sub.add_parser("import", help="turn an official checkpoint into a run folder", formatter_class=_Help,
                       description="Turn official checkpoints (CycleGAN, U-GAT-IT TensorFlow or PyTorch, AttentionGAN, "
                                   "StarGAN) into an ordinary run folder: every official key used exactly once, every "
                                   "shape checked. docs/pretrained.md lists the weights and the command for each.",
                       epilog="formats:\n" + "\n".join(f"  {k:<18} {v}" for k, v in FORMAT_HELP.items())
                              + "\n\nexamples:\n"
                                "  unpaired import --format cyclegan --input latest_net_G_A.pth latest_net_G_B.pth "
                                "latest_net_D_A.pth latest_net_D_B.pth --out runs/h2z\n"
                                "  unpaired import --format cyclegan --input horse2zebra.pth --out runs/h2z  "
                                "# one generator: the run's AtoB\n"
                                "  unpaired import --format ugatit-tf --input checkpoint/UGATIT_selfie2anime_lsgan_"
                                "4resblock_6dis_1_1_10_10_1000_sn_smoothing --out runs/s2a")
    p.add_argument("--format", required=True, choices=sorted(FORMAT_HELP), help="the official code's format (below)")
    p.add_argument("--input", required=True, nargs="+", help="the official file(s)")
    p.add_argument("--out", required=True, help="run folder to write")
    p.add_argument("--domains", metavar="A,B,C", help="multi-domain formats: the domain names in label order "
                                                       "(default domain0, domain1, ...)")
    p.add_argument("--tf-smoothing", choices=["auto", "on", "off"],
                   help="ugatit-tf: AdaLIN rho smoothing (on: rho_eff = clip(rho - 0.1, 0, 1), the official default; "
                        "off: rho as stored); auto (default) reads it off the model folder name (..._smoothing)")
    p.set_defaults(func=cmd_import)

    p = _command(sub, "evaluate", "score translations of a test split (FID, KID, attention/background)", [
        "unpaired evaluate --checkpoint runs/quick --data data/synth --metrics fid,kid,masks",
        "unpaired evaluate --checkpoint runs/quick --data data/synth --feature-extractor unpaired-tiny --json s.json",
        "unpaired evaluate --checkpoint runs/faces --data data/faces --feature-extractor faces.safetensors "
        "--metrics fid,kid,accuracy"],
        description="Translate the test split with the run's newest generators and score the translations. FID/KID "
                    "need the standard Inception weights as a local file (--inception-weights), or another feature "
                    "extractor: a file from `unpaired extractor train` (numbers comparable on that dataset only), or "
                    "unpaired-tiny (a fixed random 2-layer network: for smoke tests only, not a quality measure).")
    p.add_argument("--checkpoint", required=True, help="run folder (its newest generators) or checkpoint file")
    p.add_argument("--data", required=True, help="dataset folder with testA/ testB/ (and *_masks/ for mask scores)")
    p.add_argument("--split", default="test", help="split prefix: test -> testA/testB (default), train, ...")
    p.add_argument("--direction", default="both", choices=["AtoB", "BtoA", "both"], help="which translations to score")
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
                   help="inception-v3-compat (the standard FID Inception, default), a .safetensors file written by "
                        "`unpaired extractor train`, or unpaired-tiny (smoke tests only)")
    p.add_argument("--kid-subset-size", type=int, help="KID subset size (default: what the test set allows, <= 1000)")
    p.add_argument("--batch-size", type=int, default=16, help="images translated and scored at once")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps")
    p.set_defaults(func=cmd_evaluate)

    p = _command(sub, "compare", "one picture of several models' translations (and attention) side by side", [
        "unpaired compare --checkpoint runs/quick runs/quick-cyclegan --input data/synth/testA --output compare.png",
        "unpaired compare --checkpoint runs/a runs/b --names ours,baseline --input 'photos/*.jpg' --output c.png"])
    p.add_argument("--checkpoint", required=True, nargs="+", help="run folders or generator files, one per model")
    p.add_argument("--input", required=True, nargs="+", help="image files, folders or glob patterns")
    p.add_argument("--output", required=True, help="PNG to write")
    p.add_argument("--names", help="comma-separated column names (default: the checkpoints' folder names)")
    p.add_argument("--direction", default="AtoB", choices=["AtoB", "BtoA"], help="two-domain models: which way")
    p.add_argument("--target-domain", action="append", metavar="NAME",
                   help="multi-domain models: the domain(s) to translate to (a,b,c: one column each per model)")
    p.add_argument("--max-rows", type=int, default=8, help="first N inputs (default 8)")
    p.add_argument("--cell", type=int, default=96, help="pixel size of each picture (default 96)")
    p.add_argument("--batch-size", type=int, default=8, help="images translated at once")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps")
    p.set_defaults(func=cmd_compare)

    p = _command(sub, "extractor", "train a domain classifier to use as FID/KID feature extractor", [
        "unpaired extractor train --data data/synth --out synth.safetensors",
        "unpaired extractor train --data data/faces --out faces.safetensors --epochs 20"])
    esub = p.add_subparsers(dest="extractor_command", metavar="EXTRACTOR_COMMAND", required=True)
    e = _command(esub, "train", "train a ResNet-18 (no pretrained weights) on a dataset's training split", [
        "unpaired extractor train --data data/synth --out synth.safetensors",
        "unpaired extractor train --data data/faces --out faces.safetensors --size 64 --epochs 20"],
                        description="For FID/KID without the standard Inception weights, and for the accuracy "
                                    "metric. Numbers are comparable between models on that dataset only.")
    e.add_argument("--data", required=True, help="trainA/ trainB/ (+ testA/ testB/), or train/<domain>/ (+ test/)")
    e.add_argument("--out", required=True, help="the .safetensors file to write")
    e.add_argument("--size", type=int, default=64, help="input size the classifier sees (default 64)")
    e.add_argument("--epochs", type=int, default=12, help="passes over the training split")
    e.add_argument("--batch-size", type=int, default=64, help="images per optimisation step")
    e.add_argument("--seed", type=int, default=0, help="random seed (initial weights, order, augmentation)")
    p.set_defaults(func=cmd_extractor)

    p = _command(sub, "export", "export a generator to ONNX or TorchScript, checked against PyTorch", [
        "unpaired export --checkpoint runs/quick --format onnx --output quick.onnx",
        "unpaired export --checkpoint runs/quick --format torchscript --output quick_BtoA.pt --direction BtoA"],
        description="Export one generator with its attention outputs, check it against PyTorch (the largest "
                    "difference is printed; above --tolerance it fails) and write a JSON description beside it.")
    p.add_argument("--checkpoint", required=True, help="run folder, generator .safetensors or step_N.pt")
    p.add_argument("--format", required=True, choices=["onnx", "torchscript"], help="file format to write")
    p.add_argument("--output", required=True, help="file to write (a JSON description is written beside it)")
    p.add_argument("--direction", default="AtoB", choices=["AtoB", "BtoA"], help="two-domain models: which generator")
    p.add_argument("--target-domain", metavar="NAME", help="multi-domain models: build this target into the graph "
                   "(default: the target label vector is a second input, 'label')")
    p.add_argument("--size", type=int, help="example input size (default: the training crop size)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset")
    p.add_argument("--tolerance", type=float, default=1e-4, help="largest allowed |exported - PyTorch|")
    p.set_defaults(func=cmd_export)

    p = _command(sub, "demo", "serve a web demo of a trained model (needs the [demo] extra)", [
        "unpaired demo --checkpoint runs/quick", "unpaired demo --checkpoint runs/quick --port 8080 --data data/synth"],
        description="Serve a Gradio page: upload or pick a test image, choose the direction (multi-domain: the "
                    "target domain), see the translation and the attention overlay and masks.")
    p.add_argument("--checkpoint", required=True, help="run folder")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port to serve on")
    p.add_argument("--data", help="dataset folder whose test images serve as examples (default: from the run)")
    p.add_argument("--max-upload-mb", type=float, default=10.0, help="largest upload the server accepts, in MB")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps")
    p.set_defaults(func=cmd_demo)
    return parser
