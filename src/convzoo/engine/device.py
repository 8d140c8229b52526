"""Choosing the device: ``auto`` takes CUDA, then Apple's MPS, then the CPU."""

from __future__ import annotations

import torch

from ..errors import ConvzooError


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConvzooError(f"--device {name!r} is not a device; expected auto, cpu, cuda[:N] or mps"
                           ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConvzooError(f"--device {name}: CUDA is not available on this machine")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConvzooError(f"--device {name}: MPS is not available on this machine")
    return device
