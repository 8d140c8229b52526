"""Data: readers (IDX), in-memory data sets, presets and batch loaders."""

from .datasets import SOURCES, ImageDataset, load_dataset
from .idx import parse_idx, read_idx
from .loader import BatchLoader
from .presets import PRESETS, DataPreset, apply_preset, preset_for

__all__ = [
    "SOURCES", "ImageDataset", "load_dataset", "parse_idx", "read_idx", "BatchLoader", "PRESETS",
    "DataPreset", "apply_preset", "preset_for",
]
