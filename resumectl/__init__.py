"""Operator and producer command line: inspect and redrive the DLQ, send resume decisions."""
