"""Makes drover_worker importable when the tests run without PYTHONPATH=worker_py."""

import sys
from pathlib import Path

_WORKER_PATH = str(Path(__file__).resolve().parent.parent)
if _WORKER_PATH not in sys.path:
    sys.path.insert(0, _WORKER_PATH)
