"""nnctl: declarative, config-driven neural-network training on a pure-NumPy core."""

__version__ = "0.1.0"
