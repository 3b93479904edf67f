"""Makes the shared test helpers (`pallas_cases`) importable under --import-mode=importlib."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
