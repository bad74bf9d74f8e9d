"""nnctl.core."""
