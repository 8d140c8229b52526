"""``summary``: a per-layer table of a network: output shape, parameters, multiply-adds, receptive
field and jump, activation memory, with totals.

Counting is done by PyTorch, not by formulas written per layer type:

- multiply-adds come from :class:`torch.utils.flop_counter.FlopCounterMode`, which counts the
  FLOPs of every matmul / convolution at the ATen level and attributes them to the module that ran
  them; one multiply-add (MAC) is two FLOPs, so ``macs = flops / 2``. These are the "GFLOPS" of
  torchvision's model tables (see ``docs/zoo_comparison.md`` on multiply-adds vs FLOPs).
  Element-wise work (ReLU, batch norm, pooling, additions) is not counted, as in the papers.
- the receptive field is propagated through every ATen op by a ``TorchDispatchMode``: each
  tensor carries ``(size, jump, spatial extent)``; a convolution or pooling with kernel ``k``,
  stride ``s`` and dilation ``d`` maps ``size -> size + d (k - 1) jump`` and
  ``jump -> jump s`` (Araujo et al., "Computing receptive fields of convolutional neural
  networks", Distill 2019, eq. 2 and 3). Ops that merge tensors (``cat`` in Inception/DenseNet,
  ``add`` in ResNet) take the *maximum* size and jump over their inputs, i.e. the largest
  receptive field over all paths through the branching graph. A fully connected layer that reads
  a flattened ``h x w`` map sees all of it: ``size -> size + (h - 1) jump``. Sizes are the
  theoretical receptive field and may exceed the input (padding), as in the literature. The
  field's centre follows too (Araujo et al. eq. 7-8: ``centre -> centre + (d (k - 1) / 2 - p)
  jump`` for padding ``p``; ``F.pad`` moves it by its padding): output position ``(i, j)`` of a
  layer looks at input pixels around ``centre + (i, j) * jump``, where Grad-CAM places its map.
- activation memory is the bytes of each layer's output for the given batch; its total is the sum
  over layers, a rough figure for what training keeps for the backward pass.
- every operation has a row, not only the modules: a torch function that a ``forward`` calls
  outside any leaf module (LeNet-5's ``F.pad``, a residual block's ``out += identity``, the
  ``torch.cat`` of an Inception module or a DenseNet layer, ``torch.flatten``, GoogLeNet's
  ``F.relu``) is a row named after the module whose forward called it (``layer1.0.add``,
  ``pad`` at the top), found by :class:`FunctionalOps`, a ``TorchFunctionMode``. Tracing with
  ``torch.fx`` would find them too, but it cannot run a forward with Python control flow on its
  input (LeNet's shape check, DenseNet's memory-efficient branch), and the row must follow the
  pass that actually ran.

The model runs once, in eval mode, under ``torch.no_grad``. A registered model name is built on
the ``meta`` device (shapes only: no memory, no arithmetic), so even VGG-19 is summarised in about
a second.
"""

from __future__ import annotations

import functools
import html
import logging
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode
from torch.utils.weak import WeakIdKeyDictionary

from ..errors import ConvzooError

log = logging.getLogger(__name__)

aten = torch.ops.aten


@dataclass(frozen=True)
class _RF:
    """Receptive field of one tensor: size and jump (pixels of the input), per axis (H, W)."""

    size: tuple[int, int]
    jump: tuple[int, int]
    spatial: tuple[int, int]  # (H, W) of the last 4-D map this tensor derives from
    centre: tuple[float, float] = (0.0, 0.0)  # input pixel (H, W) at position 0's field centre


def _pair(v: Any, default: int) -> tuple[int, int]:
    if v is None or (isinstance(v, (list, tuple)) and len(v) == 0):
        return (default, default)
    if isinstance(v, int):
        return (v, v)
    v = [int(t) for t in v]
    return (v[0], v[0]) if len(v) == 1 else (v[0], v[1])


def _window(rf: _RF, kernel, stride, dilation=(1, 1), padding=(0, 0)
            ) -> tuple[tuple[int, int], tuple[int, int], tuple[float, float]]:
    """Size, jump and centre of the receptive field after a ``kernel`` window (Araujo et al.
    eq. 2, 3 and 7-8)."""
    size = tuple(r + d * (k - 1) * j
                 for r, k, d, j in zip(rf.size, kernel, dilation, rf.jump, strict=False))
    jump = tuple(j * s for j, s in zip(rf.jump, stride, strict=False))
    centre = tuple(c + (d * (k - 1) / 2 - p) * j
                   for c, k, d, p, j in zip(rf.centre, kernel, dilation, padding, rf.jump,
                                            strict=False))
    return size, jump, centre  # type: ignore[return-value]


class _ReceptiveFieldMode(TorchDispatchMode):
    """Propagates a :class:`_RF` through every ATen op of a forward pass."""

    def __init__(self) -> None:
        super().__init__()
        self.info: WeakIdKeyDictionary = WeakIdKeyDictionary()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        inputs = [t for t in tree_flatten((args, kwargs))[0]
                  if isinstance(t, torch.Tensor) and t in self.info]
        if not inputs:
            return out
        first: _RF = self.info[inputs[0]]
        src = args[0] if args and isinstance(args[0], torch.Tensor) else None
        base: _RF = self.info.get(src, first) if src is not None else first
        packet = func.overloadpacket
        size, jump, centre = base.size, base.jump, base.centre
        if packet is aten.convolution:
            kernel = tuple(args[1].shape[2:])
            if len(kernel) == 2 and not args[6]:  # 2-D, not transposed
                size, jump, centre = _window(base, kernel, _pair(args[3], 1), _pair(args[5], 1),
                                             _pair(args[4], 0))
        elif packet in (aten.max_pool2d_with_indices, aten.max_pool2d):
            k = _pair(args[1], 1)
            stride = _pair(args[2] if len(args) > 2 else None, 0)
            stride = k if stride == (0, 0) else stride
            dil = _pair(args[4] if len(args) > 4 else None, 1)
            size, jump, centre = _window(base, k, stride, dil,
                                         _pair(args[3] if len(args) > 3 else None, 0))
        elif packet is aten.avg_pool2d:
            k = _pair(args[1], 1)
            stride = _pair(args[2] if len(args) > 2 else None, 0)
            size, jump, centre = _window(base, k, k if stride == (0, 0) else stride, (1, 1),
                                         _pair(args[3] if len(args) > 3 else None, 0))
        elif packet in (aten._adaptive_avg_pool2d, aten.adaptive_max_pool2d,
                        aten.adaptive_avg_pool2d):
            h, w = args[0].shape[-2:]
            oh, ow = _pair(args[1], 1)
            # Adaptive pooling windows are ceil(in/out) wide at a stride of about in/out.
            k = (-(-h // oh), -(-w // ow))
            size, jump, centre = _window(base, k, (max(h // oh, 1), max(w // ow, 1)))
        elif packet is aten.mean and src is not None and src.ndim == 4:
            dims = {d % 4 for d in (args[1] if len(args) > 1 and args[1] is not None else ())}
            if {2, 3} <= dims:  # x.mean((2, 3)): global average pooling
                size, jump, centre = _window(base, tuple(src.shape[-2:]),
                                             tuple(src.shape[-2:]))
        elif packet is aten.constant_pad_nd and src is not None and src.ndim == 4:
            pad = list(args[1]) + [0] * 4  # (left, right, top, bottom, ...): W first
            centre = (centre[0] - pad[2] * jump[0], centre[1] - pad[0] * jump[1])
        elif packet in (aten.mm, aten.addmm, aten.bmm, aten.matmul, aten.linear):
            # A fully connected layer over a flattened (h, w) map sees every position of it.
            size, jump, centre = _window(base, base.spatial, (1, 1))
            base = _RF(size, jump, (1, 1), centre)
        if len(inputs) > 1 and packet not in (aten.convolution,):
            # Merging paths (cat, add): the largest receptive field over the inputs.
            rfs = [self.info[t] for t in inputs] + [_RF(size, jump, base.spatial, centre)]
            size = tuple(max(r.size[i] for r in rfs) for i in range(2))  # type: ignore[assignment]
            jump = tuple(max(r.jump[i] for r in rfs) for i in range(2))  # type: ignore[assignment]
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                spatial = tuple(t.shape[-2:]) if t.ndim == 4 else base.spatial
                self.info[t] = _RF(size, jump, spatial, centre)  # type: ignore[arg-type]
        return out


@dataclass
class LayerRow:
    """One call of a leaf module in forward order."""

    name: str  # qualified module name, e.g. "layer1.0.conv1"
    type: str  # class name, e.g. "Conv2d"
    output_shape: list[int]
    params: int  # parameters of the module (counted on its first call only)
    macs: int  # multiply-adds of this call (FLOPs / 2)
    rf: list[int] | None  # receptive field (H, W) in input pixels; None: not a tensor output
    jump: list[int] | None  # distance in input pixels between adjacent output positions
    act_bytes: int  # bytes of the output (0 for an in-place operation: it allocates nothing)
    functional: bool = False  # a torch function called in a forward, not a module
    # input pixel (H, W) at the centre of output position (0, 0)'s receptive field; position
    # (i, j) is centred at centre + (i, j) * jump (pixel centres at whole numbers)
    centre: list[float] | None = None


@dataclass
class ModelSummary:
    model: str
    input_shape: list[int]  # (B, C, H, W)
    rows: list[LayerRow]
    params: int  # every parameter of the model
    trainable_params: int
    macs: int  # total multiply-adds of one forward pass of the whole batch
    flops: int  # = 2 * macs, as torch.utils.flop_counter counts them
    activation_bytes: int  # sum of the rows' output bytes
    param_bytes: int
    rf: list[int] | None  # receptive field of the output
    macs_by_module: dict[str, int] = field(default_factory=dict)  # every module, nested totals
    # Every module's first call: its class and output (the rows of ``summary --depth N``).
    modules: dict[str, LayerRow] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # where the torchvision form departs

    def to_dict(self, depth: int | None = None) -> dict[str, Any]:
        d = asdict(self)
        del d["modules"]
        if depth is not None:
            d["rows"] = [asdict(r) for r in self.rows_at_depth(depth)]
        d["gmacs"] = self.macs / 1e9
        return d

    def format_table(self, depth: int | None = None) -> str:
        return format_summary(self, depth)

    def _repr_html_(self) -> str:
        """The table of :meth:`format_table` as HTML (Jupyter shows it for a cell's value)."""
        return summary_html(self)

    def block_of(self, row: LayerRow, depth: int) -> str:
        """The name of the row of :meth:`rows_at_depth` that ``row`` folds into: its module
        name cut to ``depth`` names (``layer1.0.conv1`` at 1: ``layer1``)."""
        inside = row.name in self.modules or row.functional  # named under a module
        return ".".join(row.name.split(".")[:depth]) if inside else row.name

    def rows_at_depth(self, depth: int) -> list[LayerRow]:
        """One row per module ``depth`` names deep (``layer1`` at 1, ``layer1.0`` at 2): the
        leaf rows under it summed (params, MACs, activation memory), with the module's own
        output shape and receptive field."""
        if depth < 1:
            raise ConvzooError(f"--depth must be >= 1, got {depth}")
        out: list[LayerRow] = []
        keys: list[str] = []
        for r in self.rows:
            key = self.block_of(r, depth)
            if keys and keys[-1] == key:
                last = out[-1]
                last.params += r.params
                last.macs += r.macs
                last.act_bytes += r.act_bytes
                if key not in self.modules:  # no output of its own: the last row's
                    last.output_shape, last.rf, last.jump = r.output_shape, r.rf, r.jump
                    last.centre = r.centre
                continue
            own = self.modules.get(key)
            shape = own if own is not None else r
            keys.append(key)
            out.append(LayerRow(key, shape.type, list(shape.output_shape), r.params, r.macs,
                                shape.rf, shape.jump, r.act_bytes, centre=shape.centre))
        return out


def parse_input_size(text: str, default_chans: int = 3) -> tuple[int, int, int]:
    """``"3x224x224"``, ``"224x224"`` or ``"224"`` as ``(C, H, W)``."""
    parts = re.split(r"[x,* ]+", text.strip().lower())
    try:
        dims = [int(p) for p in parts if p]
    except ValueError:
        dims = []
    if len(dims) == 1:
        dims = [default_chans, dims[0], dims[0]]
    elif len(dims) == 2:
        dims = [default_chans, *dims]
    if len(dims) != 3 or min(dims) < 1:
        raise ConvzooError(f"--input {text!r}: expected CxHxW such as 3x224x224 (or H or HxW)")
    return (dims[0], dims[1], dims[2])


def check_min_size(name: str, size: tuple[int, int, int], min_size: int) -> None:
    if min(size[1], size[2]) < min_size:
        raise ConvzooError(
            f"input {size[1]}x{size[2]} is smaller than model {name!r} accepts: its minimum "
            f"input size is {min_size}x{min_size}"
        )


def build_for_summary(name: str, *, device: str = "meta", **model_args: Any) -> nn.Module:
    """``create_model(name)`` on ``device`` (``meta``: shapes only, nothing allocated)."""
    from ..registry import create_model

    if device == "meta":
        try:
            with torch.device("meta"):
                return create_model(name, **model_args)
        except ConvzooError:
            raise
        except Exception as e:  # an initialiser that needs real data: fall back to the CPU
            log.debug("building %s on meta failed (%s); building on the CPU", name, e)
    return create_model(name, **model_args).to("cpu" if device == "meta" else device)


def summarize(
    model: str | nn.Module,
    input_size: tuple[int, int, int] | str | None = None,
    *,
    batch_size: int = 1,
    device: str = "meta",
    dtype: torch.dtype = torch.float32,
    **model_args: Any,
) -> ModelSummary:
    """Per-layer table and totals of ``model`` (a registered name or any ``nn.Module``).

    ``input_size`` is ``(C, H, W)`` (or ``"3x224x224"``); for a registered name it defaults to
    the model's own input size. ``model_args`` go to the builder (e.g. ``num_classes=10``).
    ``macs`` and the rows' ``macs`` count the whole batch.
    """
    weights_note = None
    if isinstance(model, str) and ":" in model:  # MODEL:TAG: the structure its weights load into
        model, weights_note, model_args = _with_weights(model, model_args)
    if isinstance(model, str):
        from ..registry import model_info

        info = model_info(model)
        chans = model_args.get("in_chans", info.input_size[0])
        if isinstance(input_size, str):
            input_size = parse_input_size(input_size, chans)
        size = input_size or info.input_size
        if "in_chans" not in model_args and size[0] != info.input_size[0]:
            model_args["in_chans"] = size[0]
        check_min_size(model, size, info.min_size)
        net = build_for_summary(model, device=device, **model_args)
        label = model
    else:
        if isinstance(input_size, str):
            input_size = parse_input_size(input_size)
        if input_size is None:
            raise ConvzooError("summarize(module): pass input_size=(C, H, W)")
        size, net, label = input_size, model, type(model).__name__
    if batch_size < 1:
        raise ConvzooError(f"--batch-size must be >= 1, got {batch_size}")
    first_param = next(iter(net.parameters()), None)
    dev = first_param.device if first_param is not None else torch.device("cpu")
    x = torch.randn(batch_size, *size, device=dev, dtype=dtype)
    result = _run(net, x, label)
    if isinstance(model, str):
        result.notes = torchvision_notes(model, model_args) + ([weights_note] if weights_note
                                                               else [])
    return result


def _with_weights(source: str, model_args: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """(model name, a note on the weights, builder arguments) of ``MODEL:TAG``: a shipped tag
    or torchvision's ImageNet weights (read from its enum; nothing is downloaded, the table
    needs only the structure)."""
    from ..hub import imagenet_weights, is_imagenet_tag
    from ..registry import model_info

    name, _, tag = source.partition(":")
    info = model_info(name)
    if tag in info.weights:
        return name, f"weights: the shipped {source}", model_args
    if not is_imagenet_tag(tag):
        raise ConvzooError(f"{source}: {tag!r} is neither a shipped tag of {name!r} "
                           f"({', '.join(sorted(info.weights)) or 'none'}) nor torchvision's")
    w = imagenet_weights(name, tag)
    acc = w.metrics
    note = (f"weights: torchvision's {w.source} ({w.file_name}; published ILSVRC-2012 val "
            f"acc@1 {acc.get('acc@1')}%, acc@5 {acc.get('acc@5')}%; eval resize "
            f"{w.eval_sizes()[0]}, crop {w.eval_sizes()[1]})")
    return name, note, {**w.model_args, **model_args}


def torchvision_notes(name: str, model_args: dict[str, Any]) -> list[str]:
    """Sentences on where ``name`` (as built with ``model_args``) departs from its paper because
    it follows torchvision (whose weights it loads), and what its auxiliary heads weigh."""
    from ..registry import model_info

    info = model_info(name)
    notes = []
    if info.torchvision_name == "googlenet":
        notes.append("torchvision form: each Inception module's \"5x5\" branch is a 3x3 "
                     "convolution (pytorch/vision#906, kept so that torchvision's weights load); "
                     "googlenet_cifar has the paper's 5x5")
    if info.torchvision_name in ("googlenet", "inception_v3"):
        args = {k: v for k, v in model_args.items() if k != "aux_logits"}
        without, with_aux = info.num_params(**args), info.num_params(**args, aux_logits=True)
        heads, them = (("two auxiliary classifiers", "them") if info.torchvision_name ==
                       "googlenet" else ("auxiliary classifier", "it"))
        notes.append(f"parameters: {without:,} without the {heads} (convzoo's default), "
                     f"{with_aux:,} with {them} (aux_logits=True; torchvision's default)")
    if info.torchvision_name == "inception_v3":
        notes.append("torchvision form: the stem and the 35x35 modules follow the TensorFlow "
                     "release of the weights, not the paper's Table 1 (see "
                     "convzoo.models.inception)")
    if (info.torchvision_name in ("resnet50", "resnet101", "resnet152")
            and not model_args.get("stride_in_1x1")):
        notes.append("torchvision form (\"ResNet v1.5\"): a bottleneck's stride is on its 3x3 "
                     "conv; the paper puts it on the first 1x1 (stride_in_1x1=True)")
    return notes


# Torch functions and Tensor methods that compute nothing a reader would call an operation.
_NOT_OPS = frozenset({
    "__get__", "__set__", "detach", "detach_", "contiguous", "to", "cpu", "cuda", "float",
    "double", "half", "type", "type_as", "requires_grad_", "retain_grad", "size", "dim", "numel",
    "item", "tolist", "__format__", "__repr__", "__len__", "__bool__", "__iter__", "__hash__"})


@dataclass
class FunctionalOp:
    """One torch function called in a forward outside the leaf modules."""

    name: str  # the calling module's name and the op: "layer1.0.add", "pad" (the model's own)
    type: str  # as written in forward: "F.pad", "torch.cat", "Tensor.add_"
    inputs: list[torch.Tensor]  # its tensor arguments, in order (a list argument flattened)
    inplace: bool  # it overwrites inputs[0] (``out += identity``, ``F.relu(x, inplace=True)``)
    output: torch.Tensor | None = None


def _op_type(func: Any, short: str) -> str:
    qual = getattr(func, "__qualname__", short)
    if (getattr(func, "__module__", "") == "torch.nn.functional"
            or getattr(torch.nn.functional, short, None) is func):  # F.avg_pool2d is a builtin
        return f"F.{short}"
    if qual.split(".")[0] in ("Tensor", "TensorBase", "_TensorBase"):
        return f"Tensor.{short}"
    return f"torch.{short}"


class FunctionalOps(TorchFunctionMode):
    """While active, reports each torch function a forward pass of ``net`` calls outside its leaf
    modules to ``after(op)`` once it has run (and an in-place one to ``before_inplace(op)``
    first, so that a caller can copy what it would overwrite).

    Enter it after registering any other forward hooks on ``net``: its own post-hooks, which
    mark the end of a leaf module's call, then run last, so that what the other hooks compute
    is not taken for an operation of the network."""

    def __init__(self, net: nn.Module, after, before_inplace=None) -> None:
        super().__init__()
        self.net, self.after, self.before_inplace = net, after, before_inplace
        self._stack: list[str] = []  # names of the modules running, innermost last
        self._in_leaf = 0
        self._used: set[str] = set()
        self._handles: list[Any] = []

    def __enter__(self):
        names = {m: n for n, m in self.net.named_modules()}
        self._used = set(names.values())
        for m, n in names.items():
            leaf = not list(m.children())
            self._handles.append(m.register_forward_pre_hook(
                functools.partial(self._enter, n, leaf), prepend=True))
            self._handles.append(m.register_forward_hook(functools.partial(self._exit, leaf)))
        return super().__enter__()

    def __exit__(self, *exc: Any):
        for h in self._handles:
            h.remove()
        self._handles = []
        return super().__exit__(*exc)

    def _enter(self, name: str, leaf: bool, _module: nn.Module, _args: Any) -> None:
        self._stack.append(name)
        self._in_leaf += leaf

    def _exit(self, leaf: bool, _module: nn.Module, _args: Any, _out: Any) -> None:
        self._stack.pop()
        self._in_leaf -= leaf

    def _name(self, short: str) -> str:
        parent = self._stack[-1] if self._stack else ""
        op = short.strip("_") or short  # "__add__", "add_" -> "add"
        base = f"{parent}.{op}" if parent else op
        name, i = base, 1
        while name in self._used:  # a module of that name, or the op's second call
            name, i = f"{base}_{i}", i + 1
        self._used.add(name)
        return name

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        short = getattr(func, "__name__", "")
        if self._in_leaf or not self._stack or short in _NOT_OPS:  # not the net's own op
            return func(*args, **kwargs)
        inputs = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        if not inputs:
            return func(*args, **kwargs)
        inplace = (short.endswith("_") and not short.endswith("__")) or short.startswith("__i") \
            or kwargs.get("inplace") is True
        op = FunctionalOp("", _op_type(func, short), inputs, inplace)
        if inplace and self.before_inplace is not None:
            self.before_inplace(op)
        out = func(*args, **kwargs)
        if isinstance(out, torch.Tensor):
            op.name, op.output = self._name(short), out
            self.after(op)
        return out


class _LayerRecorder:
    """Forward hooks that record what the FLOP counter ``fc`` and the receptive-field mode
    ``rfm`` saw: a :class:`LayerRow` per leaf-module call (``rows``, in forward order) and each
    module's first output (``modules``, by qualified name)."""

    def __init__(self, net: nn.Module, fc: FlopCounterMode, rfm: _ReceptiveFieldMode) -> None:
        self.names = {m: n for n, m in net.named_modules()}
        self.root = type(net).__name__
        self.fc, self.rfm = fc, rfm
        self.rows: list[LayerRow] = []
        self.modules: dict[str, LayerRow] = {}
        self._seen_params: set[int] = set()
        self._last_flops: dict[str, int] = {}
        self._counted = 0  # FLOPs attributed to a row so far

    def leaf_hook(self, module: nn.Module, _inputs: Any, output: Any) -> None:
        name = self.names.get(module, "?")
        key = f"{self.root}.{name}" if name else self.root
        fc = self.fc
        total = sum(fc.flop_counts.get(key, {}).values()) if key in fc.flop_counts else 0
        flops = total - self._last_flops.get(key, 0)
        self._last_flops[key] = total
        self._counted += flops
        params = 0
        if id(module) not in self._seen_params:
            self._seen_params.add(id(module))
            params = sum(p.numel() for p in module.parameters())
        tensors = [t for t in tree_flatten(output)[0] if isinstance(t, torch.Tensor)]
        out = tensors[0] if tensors else None
        self.rows.append(LayerRow(
            name=name or self.root, type=type(module).__name__,
            output_shape=list(out.shape) if out is not None else [],
            params=params, macs=flops // 2,
            act_bytes=sum(t.numel() * t.element_size() for t in tensors),
            **self._field(out)))

    def _field(self, t: torch.Tensor | None) -> dict[str, Any]:
        """A row's receptive-field columns for its output ``t``."""
        rf = self.rfm.info.get(t) if t is not None else None
        if rf is None:
            return {"rf": None, "jump": None, "centre": None}
        return {"rf": list(rf.size), "jump": list(rf.jump), "centre": list(rf.centre)}

    def op_row(self, op: FunctionalOp) -> None:
        """A row for a torch function called outside the leaf modules: its FLOPs are those
        counted since the last row."""
        total = self.fc.get_total_flops()
        flops, self._counted = total - self._counted, total
        out = op.output
        self.rows.append(LayerRow(
            name=op.name, type=op.type, output_shape=list(out.shape), params=0, macs=flops // 2,
            act_bytes=0 if op.inplace else out.numel() * out.element_size(), functional=True,
            **self._field(out)))

    def block_hook(self, module: nn.Module, _inputs: Any, output: Any) -> None:
        name = self.names.get(module, "")
        tensors = [t for t in tree_flatten(output)[0] if isinstance(t, torch.Tensor)]
        if not name or name in self.modules or not tensors:
            return
        self.modules[name] = LayerRow(name, type(module).__name__, list(tensors[0].shape), 0, 0,
                                      act_bytes=0, **self._field(tensors[0]))


def _forward(net: nn.Module, x: torch.Tensor, label: str, rec: _LayerRecorder) -> Any:
    """``net(x)`` once, in eval mode under ``torch.no_grad``, counted by ``rec.fc`` and traced by
    ``rec.rfm``, with ``rec``'s hooks on every module; afterwards the hooks are removed and the
    training mode restored. A RuntimeError of the model becomes a ConvzooError naming ``label``."""
    leaves = [m for m in net.modules() if not list(m.children())] or [net]
    handles = [m.register_forward_hook(rec.leaf_hook) for m in leaves]
    handles += [m.register_forward_hook(rec.block_hook) for m in net.modules()]
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad(), rec.fc, rec.rfm, FunctionalOps(net, rec.op_row):
            rec.rfm.info[x] = _RF((1, 1), (1, 1), tuple(x.shape[-2:]))  # type: ignore[arg-type]
            y = net(x)
    except RuntimeError as e:
        raise ConvzooError(
            f"model {label!r} cannot run on input {tuple(x.shape[1:])}: {str(e).splitlines()[0]}"
        ) from None
    finally:
        for h in handles:
            h.remove()
        net.train(was_training)
    return y


def _macs_by_module(fc: FlopCounterMode, root: str) -> dict[str, int]:
    """Multiply-adds of every module, nested totals, by qualified name ("(model)": the whole)."""
    by_module = {}
    for key, counts in fc.get_flop_counts().items():
        if key == "Global":
            continue
        short = key[len(root) + 1:] if key.startswith(root + ".") else ""
        by_module[short or "(model)"] = sum(counts.values()) // 2
    return by_module


def _run(net: nn.Module, x: torch.Tensor, label: str) -> ModelSummary:
    """The summary of one forward pass of ``net`` on the batch ``x`` (see :func:`summarize`)."""
    rec = _LayerRecorder(net, FlopCounterMode(display=False), _ReceptiveFieldMode())
    y = _forward(net, x, label, rec)
    rows = rec.rows
    total_flops = rec.fc.get_total_flops()
    counted = sum(r.macs for r in rows)
    if total_flops // 2 > counted:  # FLOPs no row took (none expected: see FunctionalOps)
        rows.append(LayerRow(name="(outside leaf modules)", type="-", output_shape=[], params=0,
                             macs=total_flops // 2 - counted, rf=None, jump=None, act_bytes=0))
    out = [t for t in tree_flatten(y)[0] if isinstance(t, torch.Tensor)]
    final_rf = rec.rfm.info.get(out[0]) if out else None
    by_module = _macs_by_module(rec.fc, rec.root)
    params = list(net.parameters())
    return ModelSummary(
        model=label,
        input_shape=list(x.shape),
        rows=rows,
        params=sum(p.numel() for p in params),
        trainable_params=sum(p.numel() for p in params if p.requires_grad),
        macs=total_flops // 2,
        flops=total_flops,
        activation_bytes=sum(r.act_bytes for r in rows),
        param_bytes=sum(p.numel() * p.element_size() for p in params),
        rf=list(final_rf.size) if final_rf is not None else None,
        macs_by_module=by_module,
        modules=rec.modules,
    )


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _fmt_pair(v: list[int] | None) -> str:
    if v is None:
        return "-"
    return str(v[0]) if v[0] == v[1] else f"{v[0]}x{v[1]}"


def format_summary(s: ModelSummary, depth: int | None = None) -> str:
    """The table as text, one line per leaf-module call (``depth``: per module that many names
    deep, see :meth:`ModelSummary.rows_at_depth`), totals and notes at the bottom."""
    head = (f"{'layer':<34} {'type':<18} {'output shape':<20} {'params':>12} {'MACs':>15} "
            f"{'RF':>7} {'jump':>5} {'act mem':>10}")
    lines = [f"{s.model}: input {'x'.join(map(str, s.input_shape))}", head, "-" * len(head)]
    for r in (s.rows if depth is None else s.rows_at_depth(depth)):
        shape = "x".join(map(str, r.output_shape)) or "-"
        name = r.name if len(r.name) <= 34 else "…" + r.name[-33:]
        lines.append(f"{name:<34} {r.type[:18]:<18} {shape:<20} {r.params:>12,} {r.macs:>15,} "
                     f"{_fmt_pair(r.rf):>7} {_fmt_pair(r.jump):>5} {human_bytes(r.act_bytes):>10}")
    lines.append("-" * len(head))
    lines.append(f"{'total':<34} {'':<18} {'':<20} {s.params:>12,} {s.macs:>15,} "
                 f"{_fmt_pair(s.rf):>7} {'':>5} {human_bytes(s.activation_bytes):>10}")
    lines.append(f"params {s.params:,} ({human_bytes(s.param_bytes)}), trainable "
                 f"{s.trainable_params:,}; multiply-adds {s.macs / 1e9:.3f} G "
                 f"(= {s.flops / 1e9:.3f} GFLOPs); activations {human_bytes(s.activation_bytes)}")
    lines.extend(f"note: {n}" for n in s.notes)
    return "\n".join(lines)


def summary_html(s: ModelSummary, depth: int | None = None) -> str:
    """:func:`format_summary` as an HTML table: a row per layer (or per module ``depth`` names
    deep), the totals, then the notes."""
    from .._html import table

    def cells(name: str, kind: str, shape: list[int], params: int, macs: int,
              rf: list[int] | None, jump: list[int] | None, act: int) -> list[str]:
        return [name, kind, "x".join(map(str, shape)) or "-", f"{params:,}", f"{macs:,}",
                _fmt_pair(rf), _fmt_pair(jump), human_bytes(act)]

    rows = [cells(r.name, r.type, r.output_shape, r.params, r.macs, r.rf, r.jump, r.act_bytes)
            for r in (s.rows if depth is None else s.rows_at_depth(depth))]
    rows.append(cells("total", "", [], s.params, s.macs, s.rf, None, s.activation_bytes))
    rows[-1][2] = rows[-1][6] = ""
    caption = (f"{s.model}: input {'x'.join(map(str, s.input_shape))}; params {s.params:,} "
               f"({human_bytes(s.param_bytes)}); multiply-adds {s.macs:,} ({s.macs / 1e9:.3g} G, "
               f"= {s.flops / 1e9:.3g} GFLOPs); receptive field {_fmt_pair(s.rf)}")
    out = table(["layer", "type", "output shape", "params", "MACs", "RF", "jump", "act mem"],
                rows, caption=caption, right=(3, 4, 5, 6, 7))
    return out + "".join(f"<p style='font-size:.85em'>note: {html.escape(n)}</p>"
                         for n in s.notes)
