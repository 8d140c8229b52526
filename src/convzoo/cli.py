"""The command line: ``convzoo COMMAND ...``. It parses arguments, calls the Python API, and decides
what a person sees. A :class:`ConvzooError` becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from .errors import ConvzooError


def _model_arg(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw  # a bare string such as activation=tanh
    except RecursionError:
        raise argparse.ArgumentTypeError(f"{key}: the JSON value nests too deeply") from None
    return key, value


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


# --- train -----------------------------------------------------------------------------------

def add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model and write a run directory",
                       description="Train MODEL on a data set (optionally from a paper's recipe, "
                       "see `convzoo recipes`) and write config.json, metrics.csv/.jsonl, "
                       "checkpoints/, final.json, model.safetensors and curves.png to the run "
                       "directory. Under torchrun (`torchrun --nproc-per-node=N -m convzoo train "
                       "...`) the processes train one DDP model; --batch-size is per process. "
                       "Values come from, lowest first: the defaults, --config, --recipe, flags.")
    p.add_argument("model", nargs="?", help="registered model name (see `convzoo list`); "
                   "optional with --resume or --config")
    p.add_argument("--recipe", help="start from a named recipe (see `convzoo recipes`)")
    p.add_argument("--config", help="a run's config.json (or run directory) to start from; "
                   "flags still override")
    _add_config_flags(p)
    p.add_argument("--model-arg", type=_model_arg, action="append", default=[],
                   metavar="KEY=VALUE", help="extra model argument, e.g. activation=tanh")
    p.set_defaults(run=run_train)


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field that is a flag, made from the field's declaration (help,
    flag names, type, choices: convzoo.engine.config). Every default is None, so that --config
    and --recipe values are overridden only by the flags given."""
    from .engine.config import options

    for o in options():
        if not o.flags:
            continue
        help_text = o.help
        if o.kind is bool and o.default:
            help_text += " (on by default)"
        elif o.kind is not bool and o.default not in (None, ()):
            help_text += f" (default {o.default})"
        kwargs: dict[str, Any] = {"dest": o.name, "default": None,
                                  "help": help_text.replace("%", "%%")}
        if o.kind is bool:  # --x and --no-x, so that a flag can undo a --config or --recipe value
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs.update(type=o.kind, choices=o.choices, nargs="+" if o.sequence else None)
            if o.choices is None:
                kwargs["metavar"] = o.flags[0][2:].upper().replace("-", "_")
        p.add_argument(*o.flags, **kwargs)


def run_train(args: argparse.Namespace) -> int:
    from .engine import TrainConfig, fit
    from .engine.checkpoint import load_checkpoint, resolve_resume
    from .engine.config import check_given_options, check_values, options
    from .engine.progress import LineReporter, TqdmReporter
    from .engine.recipes import get_recipe

    # Precedence, lowest first: defaults < saved config (--config, or the checkpoint's own for
    # --resume) < recipe < flags.
    values: dict[str, Any] = TrainConfig.from_file(args.config) if args.config else {}
    if args.resume and not args.config:
        values = dict(load_checkpoint(resolve_resume(args.resume))["config"])
        # The run continues where its checkpoint now is (moved or copied), not at the saved out.
        values.pop("out", None)
        values.pop("overwrite", None)
    elif args.config:
        if args.out is None:  # a re-run gets a new run directory unless --out says otherwise
            values.pop("out", None)
        values.pop("overwrite", None)  # permission to replace a run is given per command
    if args.recipe:
        values.update(get_recipe(args.recipe).values())
    if args.model:
        values["model"] = args.model
    if "model" not in values:
        raise ConvzooError("train: name a MODEL (or give --recipe, --config or --resume)")
    flags = {o.name: getattr(args, o.name) for o in options() if o.flags}
    values.update(check_values({k: v for k, v in flags.items() if v is not None}, source=None))
    if args.model_arg:
        values["model_args"] = {**values.get("model_args", {}), **dict(args.model_arg)}
    cfg = TrainConfig.from_dict(values).validate()  # before anything is written
    check_given_options(cfg, {k for k, v in flags.items() if v is not None})
    reporter = TqdmReporter() if sys.stderr.isatty() else LineReporter()
    fit(cfg, reporter)
    return 0


# --- recipes ---------------------------------------------------------------------------------

def add_recipes(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recipes", help="the training recipes and their sources",
                       description="List the named training recipes (`convzoo train MODEL "
                       "--recipe NAME`) with their paper sources; with NAME, its values.")
    p.add_argument("name", nargs="?", help="show one recipe's values")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run_recipes)


def run_recipes(args: argparse.Namespace) -> int:
    from .engine.recipes import RECIPES, get_recipe

    if args.name:
        r = get_recipe(args.name)
        values = r.values()
        if args.json:
            _print_json({"name": r.name, "source": r.source, "values": values})
            return 0
        print(f"{r.name}: {r.summary}\n  source: {r.source}")
        for k, v in values.items():
            print(f"  {k:<20} {v}")
        return 0
    if args.json:
        _print_json([{"name": r.name, "model": r.model, "data": r.data, "summary": r.summary,
                      "source": r.source} for r in RECIPES.values()])
        return 0
    print(f"{'recipe':<24} {'model':<13} {'data':<9} summary / source")
    for r in RECIPES.values():
        print(f"{r.name:<24} {r.model:<13} {r.data:<9} {r.summary}\n{'':<48}{r.source}")
    return 0


# --- eval ------------------------------------------------------------------------------------

def _add_amp(p: argparse.ArgumentParser) -> None:
    """``--amp`` as ``train`` takes it (one of TrainConfig's AMP_MODES); given alone, as eval and
    bench always took it: bf16 autocast on the CPU, fp16 on CUDA (resolved by
    :func:`convzoo.engine.scoring.amp_mode`)."""
    from .engine.config import AMP_MODES

    p.add_argument("--amp", nargs="?", const=True, default="none", choices=AMP_MODES,
                   help="mixed precision: bf16 or fp16 autocast, as in train; --amp alone: bf16 "
                   "on the CPU, fp16 on CUDA (default none)")


def add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="top-1/top-5 accuracy of a run or weights file",
                       description="Evaluate a run directory or weights file on a test split: "
                       "top-1 … top-5 accuracy and error, and per-class accuracy.")
    p.add_argument("source", help="run directory, .safetensors/.pth weights file or model:tag")
    p.add_argument("--model", help="model name, for weights files that do not name theirs")
    p.add_argument("--data", help="data set (default: the one the weights were trained on)")
    p.add_argument("--data-dir", help="folder holding the data set's files (or a .tar.gz/.zip "
                   "of it)")
    p.add_argument("--train-split", help="training sub-folder of a folder data set (default "
                   "train; not needed when the weights name their classes)")
    p.add_argument("--val-split", help="test sub-folder of a folder data set (default val; "
                   "the CIFAR-10 JPEG copy: test)")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--engine", choices=["torch", "numpy"], default="torch",
                   help="compute with torch (default) or the NumPy layers of convzoo.scratch")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--confusion", metavar="PREFIX", help="write the confusion matrix to "
                   "PREFIX.csv and PREFIX.png")
    p.add_argument("--ece", action="store_true", help="expected calibration error (15 bins)")
    p.add_argument("--ten-crop", action="store_true", help="AlexNet's 10-crop testing (corners, "
                   "center and mirror images), with the gain over the center crop")
    p.add_argument("--crops-144", action="store_true", help="GoogLeNet's 144-crop testing")
    p.add_argument("--mirror", action=argparse.BooleanOptionalAction, default=None,
                   help="mirror images in --ten-crop (default: if training flipped images)")
    _add_amp(p)
    p.add_argument("--channels-last", action="store_true")
    p.set_defaults(run=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    from .analysis.evaluation import evaluate

    if args.batch_size < 1:
        raise ConvzooError(f"--batch-size must be >= 1, got {args.batch_size}")
    result = evaluate(args.source, model=args.model, data=args.data, data_dir=args.data_dir,
                      batch_size=args.batch_size, device=args.device, engine=args.engine,
                      amp=args.amp, channels_last=args.channels_last,
                      crops=144 if args.crops_144 else (10 if args.ten_crop else 1),
                      mirror=args.mirror, confusion=args.confusion, ece=args.ece,
                      train_split=args.train_split, val_split=args.val_split, progress=True)
    if args.json:
        _print_json(result)
        return 0
    print(f"{result['model']} on {result['test_set']}")
    for k in range(1, 6):
        print(f"  top-{k} accuracy {result[f'top{k}_acc']:.4f}  error {result[f'top{k}_err']:.4f}")
    print("  per-class accuracy:")
    for cls, acc in result["per_class_acc"].items():
        print(f"    {cls:>20}  {'-' if acc is None else f'{acc:.4f}'}")
    if "ece" in result:
        print(f"  expected calibration error {result['ece']:.4f}")
    if "multi_crop" in result:
        m = result["multi_crop"]
        print(f"  {m['crops']}-crop top-1 accuracy {m['top1_acc']:.4f} (gain over the center "
              f"crop {m['top1_gain']:+.4f}), top-5 {m['top5_acc']:.4f} ({m['top5_gain']:+.4f})")
    if "confusion_csv" in result:
        print(f"  confusion matrix: {result['confusion_csv']}, {result['confusion_png']}")
    return 0


# --- list ------------------------------------------------------------------------------------

def add_list(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="the registered models",
                       description="List registered models with family, input size, parameter "
                       "count, shipped weights (load them as MODEL:TAG) and paper.")
    p.add_argument("pattern", nargs="?", help="glob pattern, e.g. 'resnet*'")
    p.add_argument("--pretrained", action="store_true", help="only models with shipped weights")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run_list)


def run_list(args: argparse.Namespace) -> int:
    from ._model_table import read_model_table  # the registry's rows, without importing torch

    rows = read_model_table(args.pattern, pretrained=args.pretrained)
    if not rows:
        which = "models with shipped weights" if args.pretrained else "models"
        raise ConvzooError(f"no registered {which} match {args.pattern!r}; see `convzoo list`")
    if args.json:
        _print_json(rows)
        return 0
    print(f"{'model':<22} {'family':<10} {'form':<8} {'input':<10} {'params':>13}  "
          f"{'weights':<9} paper")
    for r in rows:
        print(f"{r['name']:<22} {r['family']:<10} {r['form']:<8} {r['input']:<10} "
              f"{r['params']:>13,}  {','.join(r['weights']) or '-':<9} {r['paper']}")
    return 0


# --- data ------------------------------------------------------------------------------------

def add_data(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="inspect or download data sets",
                       description="Inspect a data set (counts, sizes, mean/std) or download "
                       "the official files of one.")
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    info = dsub.add_parser("info", help="counts per split and class, image sizes, mean/std",
                           description="Counts per split and class, image sizes and per-channel "
                           "mean/std of a data set name or an ImageNet-layout folder.")
    info.add_argument("source", metavar="NAME|DIR", help="data set name, or a folder (or a "
                      ".tar.gz/.zip of one)")
    info.add_argument("--data-dir", help="folder holding the data set's files")
    info.add_argument("--train-split", help="training sub-folder of a folder data set")
    info.add_argument("--val-split", help="validation/test sub-folder of a folder data set")
    info.add_argument("--json", action="store_true", help="print the result as JSON")
    info.set_defaults(run=run_data_info)
    dl = dsub.add_parser("download", help="download the official files, md5-checked",
                         description="Download a data set's official files into --data-dir, "
                         "resuming partial downloads; a file whose md5 does not match is deleted.")
    dl.add_argument("name", help="mnist, fashion-mnist, cifar10 or cifar100")
    dl.add_argument("--data-dir", required=True, help="folder to download into")
    dl.set_defaults(run=run_data_download)


def run_data_info(args: argparse.Namespace) -> int:
    from .data import dataset_info

    info = dataset_info(args.source, args.data_dir, train_split=args.train_split,
                        val_split=args.val_split)
    if args.json:
        _print_json(info)
        return 0
    print(f"{info['name']}: {info['num_classes']} classes")
    for split, e in info["splits"].items():
        mean = "-" if e["mean"] is None else ", ".join(f"{v:.4f}" for v in e["mean"])
        std = "-" if e["std"] is None else ", ".join(f"{v:.4f}" for v in e["std"])
        sizes = ", ".join(f"{k} ({v})" for k, v in list(e["sizes"].items())[:5])
        print(f"  {split}: {e['images']} images from {e['source']}")
        print(f"    sizes: {sizes}; {e['channels']} channels; mean {mean}; std {std}"
              + (f" (over {e['stats_over']} sampled files)" if e["streamed"] else ""))
        print("    per class: " + ", ".join(f"{c} {n}" for c, n in e["classes"].items()))
        if e["skipped"]:
            print(f"    skipped {len(e['skipped'])} bad files, e.g. {e['skipped'][0][0]}: "
                  f"{e['skipped'][0][1]}")
    return 0


def _download_bars() -> Callable[[str, int, int | None], None]:
    """A download progress callback: one tqdm bar per file on a terminal (stderr), nothing
    otherwise."""
    bars: dict[str, Any] = {}

    def progress(name: str, done: int, total: int | None) -> None:
        from tqdm import tqdm

        bar = bars.get(name)
        if bar is None:
            bar = bars[name] = tqdm(total=total, desc=name, unit="B", unit_scale=True,
                                    unit_divisor=1024, file=sys.stderr, disable=None,
                                    leave=True)
        bar.update(done - bar.n)
        if total is not None and done >= total:
            bar.close()

    return progress


def run_data_download(args: argparse.Namespace) -> int:
    from .data import download

    paths = download(args.name, args.data_dir, progress=_download_bars())
    for path in paths:
        print(f"{path}: md5 verified")
    return 0


# --- weights (convzoo.hub) --------------------------------------------------------------------

def add_weights(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="torchvision's ImageNet weights: list, fetch",
                       description="torchvision's ImageNet weights of the zoo's networks "
                       "(MODEL:imagenet, MODEL:IMAGENET1K_V1, ...): what exists, its published "
                       "accuracy and whether it is cached in torch.hub's folder; fetch downloads "
                       "once, SHA-256 checked.")
    wsub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    ls = wsub.add_parser("list", help="every torchvision weights file, size, accuracy, cached")
    ls.add_argument("pattern", nargs="?", help="glob pattern of model names, e.g. 'resnet*'")
    ls.add_argument("--cached", action="store_true", help="only the files already cached")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(run=run_weights_list)
    fe = wsub.add_parser("fetch", help="download weights into torch.hub's cache (once)")
    fe.add_argument("sources", nargs="+", metavar="MODEL:TAG",
                    help="e.g. alexnet:imagenet resnet50:IMAGENET1K_V2")
    fe.set_defaults(run=run_weights_fetch)


def run_weights_list(args: argparse.Namespace) -> int:
    import fnmatch

    from .hub import all_imagenet_weights, hub_dir

    rows = []
    for w in all_imagenet_weights():
        if args.pattern and not fnmatch.fnmatchcase(w.model, args.pattern):
            continue
        cached = w.cached()
        if args.cached and cached is None:
            continue
        rows.append({"source": w.source, "default": w.default, "file": w.file_name,
                     "size_mb": w.file_size_mb, **{k: v for k, v in w.metrics.items()},
                     "cached": str(cached) if cached else None})
    if args.json:
        _print_json(rows)
        return 0
    print(f"{'weights':<34} {'file':<32} {'MB':>7} {'acc@1':>7} {'acc@5':>7}  cached")
    for r in rows:
        name = r["source"] + (" (imagenet)" if r["default"] else "")
        mb = f"{r['size_mb']:.1f}" if r["size_mb"] else "-"
        acc = [f"{r[k]:.2f}" if k in r else "-" for k in ("acc@1", "acc@5")]
        print(f"{name:<34} {r['file']:<32} {mb:>7} {acc[0]:>7} {acc[1]:>7}  "
              f"{'yes' if r['cached'] else '-'}")
    print(f"cache: {hub_dir()}; published ILSVRC-2012 val accuracy (%) from torchvision; "
          f"`convzoo weights fetch MODEL:imagenet` downloads")
    return 0


def run_weights_fetch(args: argparse.Namespace) -> int:
    from .hub import imagenet_weights

    for source in args.sources:
        model, _, tag = source.partition(":")
        w = imagenet_weights(model, tag or "imagenet")
        had = w.cached() is not None
        path = w.fetch(progress=_download_bars())
        print(f"{w.source}: {path} ({'already cached' if had else 'downloaded, SHA-256 checked'})")
    return 0


# --- inspect, compare, use, ship (convzoo.analysis) -------------------------------------------

def _source_help(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="model name, for weights files that do not name theirs")


def _random_weights_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--random-weights", action="store_true", help="allow a bare model name: "
                   "its weights are random (untrained), and the command says so")


def _check_weights(args: argparse.Namespace) -> None:
    """A bare model name has random weights: refused without --random-weights, said loudly with."""
    from .weights import check_has_weights, is_bare_model_name

    check_has_weights(args.source, random_weights=args.random_weights, command=args.command)
    if is_bare_model_name(args.source):
        print(f"convzoo {args.command}: warning: RANDOM WEIGHTS: {args.source} is untrained "
              f"(--random-weights); its outputs mean nothing", file=sys.stderr)


def add_summary(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("summary", help="per-layer table: shapes, params, MACs, receptive field",
                       description="Per-layer output shape, parameters, multiply-adds (torch's "
                       "flop counter, MACs = FLOPs / 2), receptive field size and jump, activation "
                       "memory, with totals. Branches (Inception, ResNet, DenseNet) take the "
                       "largest receptive field over their paths.")
    p.add_argument("model", help="registered model name")
    p.add_argument("--input", help="input size CxHxW (default: the model's own, e.g. 3x224x224)")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--num-classes", type=int)
    p.add_argument("--model-arg", type=_model_arg, action="append", default=[],
                   metavar="KEY=VALUE", help="extra model argument")
    p.add_argument("--depth", type=int, metavar="N", help="one row per module N names deep "
                   "(1: layer1, inception3a, ...; 2: layer1.0, ...) instead of every layer")
    p.add_argument("--json", action="store_true", help="print JSON (top-level params and macs)")
    p.set_defaults(run=run_summary)


def run_summary(args: argparse.Namespace) -> int:
    from .analysis.summary import summarize

    kwargs = dict(args.model_arg)
    if args.num_classes is not None:
        kwargs["num_classes"] = args.num_classes
    s = summarize(args.model, args.input, batch_size=args.batch_size, **kwargs)
    if args.json:
        _print_json(s.to_dict(args.depth))
    else:
        print(s.format_table(args.depth))
    return 0


def add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="params, GMACs, images/s, latency, peak memory",
                       description="Benchmark freshly initialised models: parameters, GMACs, "
                       "inference and training images/s (median of --repeats), batch-1 latency, "
                       "peak memory.")
    p.add_argument("models", nargs="*", help="registered model names (default: lenet5)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--input", help="input size CxHxW (default: each model's own)")
    _add_amp(p)
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, metavar="N", help="CPU threads torch computes with "
                   "(default: torch's own, one per core); printed in the footer")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    from .analysis.bench import bench_model, format_bench
    from .analysis.summary import parse_input_size

    if args.repeats < 1:
        raise ConvzooError(f"--repeats must be >= 1, got {args.repeats}")
    size = parse_input_size(args.input) if args.input else None
    results = [bench_model(m, input_size=size, batch_size=args.batch_size, device=args.device,
                           amp=args.amp, channels_last=args.channels_last, repeats=args.repeats,
                           threads=args.threads)
               for m in (args.models or ["lenet5"])]
    if args.json:
        _print_json([r.to_dict() for r in results])
    else:
        print(format_bench(results))
    return 0


def add_compare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="runs side by side: table, differing settings, curves",
                       description="A side-by-side table of run directories, the settings in "
                       "which they differ, and under --out: their training curves overlaid "
                       "(curves.png), top-1 accuracy against multiply-adds with one axis per "
                       "data set (accuracy.png) and compare.json.")
    p.add_argument("runs", nargs="+", help="run directories")
    p.add_argument("--out", help="folder for the figures and compare.json (default: a "
                   "'compare' folder beside the first run)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run_compare)


def run_compare(args: argparse.Namespace) -> int:
    from .analysis.compare import compare_runs, format_compare

    result = compare_runs(args.runs, args.out)
    if args.json:
        _print_json(result.to_dict())
    else:
        print(format_compare(result))
    return 0


def add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="one self-contained HTML report of a run",
                       description="Write one HTML file (images embedded) with the run's config, "
                       "curves, confusion matrix, per-class accuracy and test images with their "
                       "top-5 predictions. It opens offline.")
    p.add_argument("run_dir")
    p.add_argument("--out", help="HTML file outside the run (default RUN_DIR-report.html "
                   "beside it)")
    p.add_argument("--images", type=int, default=24, help="test images shown (default 24)")
    p.add_argument("--device", default="cpu")
    p.set_defaults(run=run_report)


def run_report(args: argparse.Namespace) -> int:
    from .analysis.report import build_report

    print(build_report(args.run_dir, args.out, n_images=args.images, device=args.device))
    return 0


def add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="ONNX or torch.export (.pt2), checked against eager",
                       description="Export a run directory, weights file or model name with a "
                       "dynamic batch dimension, then check the export against eager PyTorch on "
                       "random inputs (onnxruntime for ONNX).")
    p.add_argument("source", help="run directory, weights file, or model name (model:tag)")
    _source_help(p)
    p.add_argument("--format", choices=["onnx", "export"],
                   help="onnx or export (torch.export); default: from --out's extension")
    p.add_argument("--out", required=True, help="output file: .onnx (ONNX, with class names, "
                   "mean/std and input size in its metadata) or .pt2 (torch.export)")
    _random_weights_flag(p)
    p.add_argument("--input", help="input size CxHxW (default: the model's own)")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (>= 17, default 18)")
    p.add_argument("--atol", type=float, default=1e-4)
    p.add_argument("--no-check", dest="check", action="store_false")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run_export)


def run_export(args: argparse.Namespace) -> int:
    from .analysis.export import export_source

    _check_weights(args)
    r = export_source(args.source, args.out, format=args.format, model=args.model,
                      input_size=args.input, opset=args.opset, check=args.check, atol=args.atol)
    if args.json:
        _print_json(r.to_dict())
    else:
        checked = (f"; max |export - eager| {r.max_abs_diff:.2e} at batch sizes "
                   f"{', '.join(map(str, r.checked_batches))}" if r.checked_batches else "")
        print(f"wrote {r.path} ({r.format}, input Bx{'x'.join(map(str, r.input_shape))}){checked}")
    return 0


def add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="top-5 classes of images",
                       description="For each image, the top-5 classes with their probabilities, "
                       "using the model's eval preprocessing. Non-image files are skipped with a "
                       "warning.")
    p.add_argument("source", help="run directory, weights file, or model name (model:tag)")
    p.add_argument("images", nargs="+", help="image files or folders")
    _source_help(p)
    p.add_argument("--topk", type=int, default=5)
    p.add_argument("--true-class", help="the image's true class (name, WordNet id or index): "
                   "its rank and the top-1 … top-5 error of the answer")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true")
    _random_weights_flag(p)
    p.set_defaults(run=run_predict)


def run_predict(args: argparse.Namespace) -> int:
    from .analysis.predict import predict

    _check_weights(args)
    r = predict(args.source, args.images, model=args.model, topk=args.topk, device=args.device,
                true_class=args.true_class)
    if r.skipped:
        shown = ", ".join(r.skipped[:5]) + (f" and {len(r.skipped) - 5} more"
                                            if len(r.skipped) > 5 else "")
        print(f"convzoo predict: warning: skipped {len(r.skipped)} files that are not readable "
              f"images: {shown}", file=sys.stderr)
    if args.json:
        _print_json(r.to_dict())
    else:
        for p in r.predictions:
            print(p.format())
    return 0


def add_visualize(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("visualize", help="first-layer filters, feature maps, Grad-CAM as PNG",
                       description="filters: the first convolution's filters as a grid; "
                       "features: the maps of --layer for --image; gradcam: Grad-CAM heat map "
                       "of --class (default: the predicted one) for --image.")
    p.add_argument("source", help="run directory, weights file, or model name (model:tag)")
    p.add_argument("kind", choices=["filters", "features", "gradcam"])
    p.add_argument("--out", required=True, help="PNG file")
    p.add_argument("--image", help="input image (features, gradcam)")
    p.add_argument("--layer", help="module name (see `convzoo summary`)")
    p.add_argument("--class", dest="target", help="class index or name (gradcam)")
    _source_help(p)
    _random_weights_flag(p)
    p.set_defaults(run=run_visualize)


def run_visualize(args: argparse.Namespace) -> int:
    from .analysis.visualize import visualize

    _check_weights(args)
    r = visualize(args.source, args.kind, args.out, image=args.image, layer=args.layer,
                  target=args.target, model=args.model)
    extra = f" (class {r['class']}: {r['class_name']})" if "class" in r else ""
    print(f"wrote {r['out']}{extra}")
    return 0


# --- experiment (convzoo.experiments) -----------------------------------------------------------

def add_experiment(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("experiment", help="reproduce a lecture claim: plot, table, page",
                       description="Run one of the lecture's experiments (see --list): train or "
                       "measure over seeds, then write NAME.png, NAME.csv, NAME-table.md, "
                       "NAME.json and the page NAME.md (the paper's claim, what was measured, "
                       "whether it agrees) into --out, and refresh --out/index.md. Finished "
                       "runs are reused; an interrupted one resumes when the command runs again.")
    p.add_argument("name", nargs="?", help="experiment name (see --list)")
    p.add_argument("--list", action="store_true", help="list the experiments and exit")
    p.add_argument("--profile", default="quick", help="smoke (a few steps: does it run? under "
                   "a minute on a 2-core CPU), quick (about 15 min on a 2-core CPU, the default), "
                   "long (an hour on a 2-core CPU; relu-vs-tanh) or full (the paper's setting, "
                   "for a GPU)")
    p.add_argument("--seeds", type=int, help="seeds 0..N-1 (default: the profile's, 3 for quick)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] | mps")
    p.add_argument("--out", default="runs/experiments", help="folder for the page, plot and "
                   "tables (default runs/experiments; docs/experiments for the repository's)")
    p.add_argument("--runs", help="folder for the run directories (default "
                   "runs/experiments/NAME)")
    p.add_argument("--data-dir", help="CIFAR-10: python/binary batches, a train/+test/ JPEG "
                   "folder or cifar10-jpg.tar.gz (default ../shared/data/cifar10-jpg.tar.gz)")
    p.add_argument("--mnist-dir", help="full MNIST IDX files (default ../shared/data/mnist, else "
                   "the embedded subset)")
    p.add_argument("--set", dest="overrides", type=_model_arg, action="append", default=[],
                   metavar="KEY=VALUE", help="override a profile parameter, e.g. epochs=2")
    p.add_argument("--rerun", action="store_true", help="retrain even where a finished run "
                   "directory with the same config exists")
    p.add_argument("--note", help="a sentence added to the page (e.g. what else ran meanwhile)")
    p.add_argument("--threads", type=int, metavar="N", help="CPU threads torch computes with "
                   "(default: torch's own, one per core)")
    p.add_argument("--imagenet", metavar="DIR", help="architectures: an ILSVRC-2012 val folder; "
                   "the ImageNet accuracy columns are then measured (torchvision's weights, "
                   "fetched once), not only quoted")
    p.set_defaults(run=run_experiment)


def run_experiment(args: argparse.Namespace) -> int:
    from . import experiments

    if args.list:
        for exp in experiments.list_experiments():
            print(f"{exp.name:<22} {exp.paper:<48} data: {exp.data}")
        return 0
    if not args.name:
        raise ConvzooError("experiment: name an experiment (see `convzoo experiment --list`)")
    if args.threads is not None:
        from .engine.config import check_threads

        check_threads(args.threads)
        import torch

        torch.set_num_threads(args.threads)  # this process: every run of the experiment
    known = experiments.PROFILES + experiments.OPTIONAL_PROFILES
    if args.profile not in known:
        raise ConvzooError(f"--profile must be one of {', '.join(known)}, got {args.profile!r}")
    record = experiments.run_experiment(
        args.name, profile=args.profile, seeds=args.seeds, device=args.device, out=args.out,
        runs=args.runs, data_dir=args.data_dir, mnist_dir=args.mnist_dir, rerun=args.rerun,
        note=args.note, progress=lambda message: print(message, flush=True),
        **dict(args.overrides), **({"imagenet": args.imagenet} if args.imagenet else {}))
    print(f"verdict: {record['verdict']}; page {args.out}/{args.name}.md")
    return 0


# --- explore ---------------------------------------------------------------------------------

def add_explore(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explore", help="look inside any network in the browser (local web app)",
                       description="Start a local web server with one page: pick a network "
                       "(shipped weights, a run under --runs, SOURCE, or random weights), an image "
                       "(upload, draw, or a test image) and walk its layers: feature maps, "
                       "filters, Grad-CAM, convolution as a matrix product, max-pool windows, "
                       "top-5; compare two networks. Works offline.")
    p.add_argument("source", nargs="*", help="run directory, weights file or model:tag to offer "
                   "first (optional)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default "
                   "127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="default 8000; 0 picks a free one")
    p.add_argument("--runs", default="runs", help="folder whose run directories the page offers "
                   "(default runs/)")
    p.add_argument("--data-dir", help="CIFAR-10 for test images: python/binary batches, a "
                   "train/+test/ JPEG folder or cifar10-jpg.tar.gz (default "
                   "../shared/data/cifar10-jpg.tar.gz when present)")
    p.set_defaults(run=run_explore)


def run_explore(args: argparse.Namespace) -> int:
    import socket

    try:
        from .explore import Explorer, serve
    except ImportError as e:
        raise ConvzooError(f"explore needs the web server packages ({e.name} is missing): "
                           f"pip install 'convzoo[explore]'") from None
    if not 0 <= args.port <= 65535:
        raise ConvzooError(f"--port must be 0..65535, got {args.port}")
    explorer = Explorer(runs=args.runs, sources=args.source, data_dir=args.data_dir)
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:  # a clear error, not uvicorn's exit
        try:
            probe.bind((args.host, args.port))
        except OSError as e:
            raise ConvzooError(f"cannot listen on {args.host}:{args.port}: {e.strerror}; "
                               f"pick another --port") from None
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: --host {args.host} lets other machines reach this server",
              file=sys.stderr)
    serve(explorer, host=args.host, port=args.port, default="arg:0" if args.source else None,
          ready=lambda url: print(f"convzoo explore: open {url}  (Ctrl-C stops)", flush=True))
    return 0


COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [add_train, add_eval, add_list,
                                                                add_data, add_recipes,
    add_summary, add_bench, add_compare, add_report, add_export, add_predict, add_visualize]
COMMANDS.append(add_experiment)
COMMANDS.append(add_explore)
COMMANDS.append(add_weights)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convzoo",
        description="The classic convolutional networks, LeNet to DenseNet: create, train, "
        "evaluate, inspect.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    from ._version import __version__

    parser.add_argument("--version", action="version", version=f"convzoo {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


MAX_ARGUMENT = 4096  # characters: PATH_MAX on Linux; no path, name or value is longer


def _check_lengths(argv: list[str]) -> None:
    """Refuse an argument longer than any path or name (the OS would refuse the path with a
    traceback, and messages would echo it whole)."""
    for i, arg in enumerate(map(str, argv), 1):
        if len(arg) > MAX_ARGUMENT:
            raise ConvzooError(f"argument {i} ({arg[:40]}...) is {len(arg):,} characters long; "
                               f"no path, name or value is longer than {MAX_ARGUMENT:,}")


def _amp_alone_last(argv: list[str]) -> list[str]:
    """``--amp`` given alone before a positional (``convzoo eval --amp RUN``, as eval and bench
    took it when it was a switch) moved to the end, so that argparse does not read ``RUN`` as
    its mode."""
    argv = [str(a) for a in argv]
    if "--amp" not in argv:
        return argv
    from .engine.config import AMP_MODES

    lone = [i for i, a in enumerate(argv)
            if a == "--amp" and i + 1 < len(argv) and argv[i + 1] not in AMP_MODES
            and not argv[i + 1].startswith("-")]
    if not lone or "--" in argv:
        return argv
    return [a for i, a in enumerate(argv) if i not in lone] + ["--amp"]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_amp_alone_last(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from .hub import set_download_progress  # weights fetched on first use show a bar

    set_download_progress(_download_bars())
    try:
        _check_lengths(sys.argv[1:] if argv is None else argv)
        return args.run(args)
    except ConvzooError as e:
        # TrainingInterrupted (engine.epoch; not imported here, `list` stays light) carries the
        # signal: a checkpoint was written and the message says how to resume.
        if isinstance(getattr(e, "signum", None), int):
            print(f"convzoo {args.command}: {e}", file=sys.stderr)
            return 128 + e.signum
        print(f"convzoo {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"convzoo {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `convzoo list --json | head`: the reader has gone; stop quietly as `cat` does, with
        # stdout pointed at /dev/null so that Python's own flush at exit does not fail again.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):  # no real file descriptor (stdout captured in-process)
            pass
        return 128 + 13  # SIGPIPE
