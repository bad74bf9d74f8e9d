"""CLI commands (tools)."""

COMMANDS: list = []
