"""The package version, in one place below every module that records it (run directories,
``convzoo --version``)."""

__version__ = "0.1.0"
