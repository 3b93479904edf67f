"""Makes tests/weights/weights_testlib.py importable (pytest runs with --import-mode=importlib)."""
