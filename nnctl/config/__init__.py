"""nnctl.config."""
