"""Subcommands of the model stage (registered on the `gelato` CLI)."""

from __future__ import annotations


def register(subparsers) -> None:
    """Add this stage's subcommands to the CLI."""
