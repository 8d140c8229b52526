"""Data: readers (IDX, CIFAR, image folders), the decode cache, presets, loaders and splits."""

from .datasets import SOURCES, ImageDataset, load_dataset
from .downloads import RESOURCES, download
from .folder import FolderDataset
from .idx import parse_idx, read_idx
from .imagenet import imagenet_classes
from .images import MAX_IMAGE_PIXELS, ImageTooLarge, decode_bytes, decode_file
from .info import dataset_info
from .loader import BatchLoader
from .presets import (
    PRESETS,
    DataPreset,
    apply_preset,
    finish_batch,
    preset_for,
)
from .splits import DataSource, Splits, holdout_split, load_splits, make_loader

__all__ = [
    "SOURCES", "ImageDataset", "imagenet_classes", "load_dataset", "RESOURCES", "download",
    "FolderDataset", "decode_file", "decode_bytes", "MAX_IMAGE_PIXELS", "ImageTooLarge",
    "parse_idx", "read_idx", "dataset_info", "BatchLoader",
    "PRESETS", "DataPreset", "apply_preset", "finish_batch", "preset_for", "Splits",
    "holdout_split", "load_splits", "make_loader", "DataSource",
]
