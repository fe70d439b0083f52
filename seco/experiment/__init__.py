"""Controlled experiments: ``seco experiment compare`` (methods x seeds on one store and one budget)."""
