"""Data: the table of data sets (DATASETS), their readers (IDX, CIFAR, image folders), the one
image opener, the decode cache, presets, loaders and splits. Never names a model."""

from .datasets import (
    DATASETS,
    PRESETS,
    SOURCES,
    DataSet,
    ImageDataset,
    Resource,
    load_dataset,
    preset_for,
)
from .downloads import RESOURCES, download
from .folder import FolderDataset
from .idx import parse_idx, read_idx
from .imagenet import imagenet_classes
from .images import MAX_IMAGE_PIXELS, ImageTooLarge, decode_bytes, decode_file
from .info import dataset_info
from .loader import BatchLoader
from .presets import DataPreset, apply_preset, finish_batch
from .splits import DataSource, Splits, holdout_split, load_splits, make_loader

__all__ = [
    "DATASETS", "DataSet", "Resource", "SOURCES", "ImageDataset", "imagenet_classes",
    "load_dataset", "RESOURCES", "download",
    "FolderDataset", "decode_file", "decode_bytes", "MAX_IMAGE_PIXELS", "ImageTooLarge",
    "parse_idx", "read_idx", "dataset_info", "BatchLoader",
    "PRESETS", "DataPreset", "apply_preset", "finish_batch", "preset_for", "Splits",
    "holdout_split", "load_splits", "make_loader", "DataSource",
]
