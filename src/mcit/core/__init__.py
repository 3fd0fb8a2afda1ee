"""Pieces every layer may use: user-facing errors, typed configuration, atomic files."""
