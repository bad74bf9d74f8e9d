"""nnctl.data."""
