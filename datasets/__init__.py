"""Embedded data sets shipped with nnctl (see NOTICE.md)."""
