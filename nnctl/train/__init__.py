"""nnctl.train."""
