"""CLI commands (data)."""

COMMANDS: list = []
