"""The argument parser of the ``unpaired`` command: every subcommand, its options and its help."""

from __future__ import annotations

import argparse

from .commands import cmd_data, cmd_import, cmd_train, cmd_translate
from .reports import cmd_compare, cmd_demo, cmd_evaluate, cmd_export, cmd_extractor


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
    from ..data.download import BASE_URL_ENV, DATASETS

    d = dsub.add_parser("download", help="download a standard unpaired dataset by name (needs the [download] extra)",
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        description="Download NAME.zip (resumable: run the same command again after an interruption), "
                                    "check its sha256 where known, unpack trainA/ trainB/ testA/ testB/ into DIR and "
                                    "record the source, licence and sha256 in DIR/SOURCE.json.",
                        epilog="datasets:\n" + "\n".join(f"  {k:<24} {v.domains}" for k, v in DATASETS.items())
                               + f"\n\nmirror: set {BASE_URL_ENV}=URL (files URL/NAME.zip)"
                                 "\nexample:\n  unpaired data download horse2zebra data/horse2zebra")
    d.add_argument("name", metavar="NAME")
    d.add_argument("dir", metavar="DIR")
    d.add_argument("--sha256", metavar="HEX", help="the archive's expected sha256 (refused if it differs)")
    d.add_argument("--keep-archive", action="store_true", help="keep DIR/.download/NAME.zip after unpacking")
    c = dsub.add_parser("check", help="list every file of a dataset that cannot be used, with the reason")
    c.add_argument("dir")
    p.set_defaults(func=cmd_data)

    from ..compat import FORMAT_HELP

    p = sub.add_parser("import", help="turn an official checkpoint into a run folder",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="formats:\n" + "\n".join(f"  {k:<18} {v}" for k, v in FORMAT_HELP.items())
                              + "\n\nexamples:\n"
                                "  unpaired import --format cyclegan --input latest_net_G_A.pth latest_net_G_B.pth "
                                "latest_net_D_A.pth latest_net_D_B.pth --out runs/h2z\n"
                                "  unpaired import --format cyclegan --input horse2zebra.pth --out runs/h2z  "
                                "(one generator: the run's AtoB)\n"
                                "  unpaired import --format ugatit-tf --input checkpoint/UGATIT_selfie2anime_lsgan_"
                                "4resblock_6dis_1_1_10_10_1000_sn_smoothing --out runs/s2a")
    p.add_argument("--format", required=True, choices=sorted(FORMAT_HELP))
    p.add_argument("--input", required=True, nargs="+", help="the official file(s)")
    p.add_argument("--out", required=True, help="run folder to write")
    p.add_argument("--domains", metavar="A,B,C", help="multi-domain formats: the domain names in label order "
                                                       "(default domain0, domain1, ...)")
    p.add_argument("--tf-smoothing", choices=["auto", "on", "off"],
                   help="ugatit-tf: AdaLIN rho smoothing (on: rho_eff = clip(rho - 0.1, 0, 1), the official default; "
                        "off: rho as stored); auto (default) reads it off the model folder name (..._smoothing)")
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
