"""CLI commands (config)."""

COMMANDS: list = []
