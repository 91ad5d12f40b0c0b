"""Imported by test_side_a.py only; test_side_b.py relies on the import side effect."""
REGISTRY = ["registered-by-import"]
