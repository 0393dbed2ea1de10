"""nstd: a neural-style-transfer daemon."""

__version__ = "0.1.0"
