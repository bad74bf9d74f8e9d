"""CLI commands (train)."""

COMMANDS: list = []
