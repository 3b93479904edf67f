"""Makes the shared test helpers (`pallas_cases`) importable under --import-mode=importlib."""
