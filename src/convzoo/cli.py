"""The command line: ``convzoo COMMAND ...``. It parses arguments, calls the Python API, and decides
what a person sees. A :class:`ConvzooError` becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any, Callable

from .errors import ConvzooError



def _model_arg(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw  # a bare string such as activation=tanh
    return key, value


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


# --- train -----------------------------------------------------------------------------------

def add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model and write a run directory",
                       description="Train MODEL on a data set with SGD (momentum, weight decay) "
                       "and write config.json, metrics.csv, final.json, model.safetensors and "
                       "curves.png to the run directory.")
    p.add_argument("model", help="registered model name (see `convzoo list`)")
    # Defaults are None so that --config values are only overridden by flags actually given.
    p.add_argument("--data", help="data set name (default mnist: the embedded subset without "
                   "--data-dir)")
    p.add_argument("--data-dir", help="folder holding the data set's files")
    p.add_argument("--epochs", type=int, help="passes over the training split (default 12)")
    p.add_argument("--batch-size", type=int, help="images per step (default 64)")
    p.add_argument("--lr", type=float, help="peak learning rate (default 0.05)")
    p.add_argument("--momentum", type=float, help="SGD momentum (default 0.9)")
    p.add_argument("--wd", type=float, help="weight decay (default 5e-4)")
    p.add_argument("--lr-scheduler", choices=["cosine", "step"], help="default cosine")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--device", help="auto | cpu | cuda[:N] | mps (default auto)")
    p.add_argument("--engine", choices=["torch", "numpy"], help="torch (default) or the NumPy "
                   "layers of convzoo.scratch")
    p.add_argument("--conv", choices=["native", "gemm"], help="native nn.Conv2d (default) or "
                   "convzoo.gemm's im2col + matmul convolution")
    p.add_argument("--num-classes", type=int, help="default: the data's class count")
    p.add_argument("--in-chans", type=int, help="default: the data's channel count")
    p.add_argument("--model-arg", type=_model_arg, action="append", default=[],
                   metavar="KEY=VALUE", help="extra model argument, e.g. activation=tanh")
    p.add_argument("--out", help="run directory (default runs/<model>-<data>-<timestamp>)")
    p.add_argument("--config", help="a run's config.json (or run directory) to start from; "
                   "flags still override")
    p.set_defaults(run=run_train)


def run_train(args: argparse.Namespace) -> int:
    from .engine import TrainConfig, fit
    from .engine.progress import LineReporter, TqdmReporter

    values: dict[str, Any] = TrainConfig.from_file(args.config) if args.config else {}
    values["model"] = args.model
    for name in ("data", "data_dir", "epochs", "batch_size", "lr", "momentum", "wd",
                 "lr_scheduler", "seed", "device", "engine", "conv", "num_classes", "in_chans", "out"):
        given = getattr(args, name)
        if given is not None:
            values[name] = given
    if args.config and args.out is None:
        values.pop("out", None)  # a re-run gets a new run directory unless --out says otherwise
    if args.model_arg:
        values["model_args"] = {**values.get("model_args", {}), **dict(args.model_arg)}
    cfg = TrainConfig.from_dict(values)
    reporter = TqdmReporter() if sys.stderr.isatty() else LineReporter()
    fit(cfg, reporter)
    return 0


# --- eval ------------------------------------------------------------------------------------

def add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="top-1/top-5 accuracy of a run or weights file",
                       description="Evaluate a run directory or weights file on a test split: "
                       "top-1 … top-5 accuracy and error, and per-class accuracy.")
    p.add_argument("source", help="run directory or .safetensors/.pth weights file")
    p.add_argument("--model", help="model name, for weights files that do not name theirs")
    p.add_argument("--data", help="data set (default: the one the weights were trained on)")
    p.add_argument("--data-dir", help="folder holding the data set's files")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(run=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    from .engine import evaluate

    if args.batch_size < 1:
        raise ConvzooError(f"--batch-size must be >= 1, got {args.batch_size}")
    result = evaluate(args.source, model=args.model, data=args.data, data_dir=args.data_dir,
                      batch_size=args.batch_size, device=args.device)
    if args.json:
        _print_json(result)
        return 0
    print(f"{result['model']} on {result['data']} ({result['n']} test images)")
    for k in range(1, 6):
        print(f"  top-{k} accuracy {result[f'top{k}_acc']:.4f}  error {result[f'top{k}_err']:.4f}")
    print("  per-class accuracy:")
    for cls, acc in result["per_class_acc"].items():
        print(f"    {cls:>20}  {'-' if acc is None else f'{acc:.4f}'}")
    return 0


# --- list ------------------------------------------------------------------------------------

def add_list(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="the registered models",
                       description="List registered models with family, input size, parameter "
                       "count and paper.")
    p.add_argument("pattern", nargs="?", help="glob pattern, e.g. 'resnet*'")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run_list)


def run_list(args: argparse.Namespace) -> int:
    from .registry import list_models, model_info

    rows = []
    for name in list_models(args.pattern):
        info = model_info(name)
        rows.append({"name": name, "family": info.family, "form": info.form,
                     "input": "x".join(map(str, info.input_size)),
                     "params": info.num_params(), "paper": info.paper})
    if args.json:
        _print_json(rows)
        return 0
    print(f"{'model':<22} {'family':<10} {'form':<8} {'input':<10} {'params':>13}  paper")
    for r in rows:
        print(f"{r['name']:<22} {r['family']:<10} {r['form']:<8} {r['input']:<10} "
              f"{r['params']:>13,}  {r['paper']}")
    return 0


COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [add_train, add_eval, add_list]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convzoo",
        description="The classic convolutional networks, LeNet to DenseNet: create, train, "
        "evaluate, inspect.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.run(args)
    except ConvzooError as e:
        print(f"convzoo {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"convzoo {args.command}: interrupted", file=sys.stderr)
        return 130
