"""The lower layers stay cheap to import: no Kubernetes client behind `import scalers`.

A scaler author, a benchmark or the KEDA front door imports `scalers` and `kits` without paying
for kubernetes_asyncio (hundreds of generated model modules). Checked in a fresh interpreter,
because this test process has long since imported everything.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("package", ["kits", "scalers"])
def test_importing_does_not_load_the_kubernetes_client(package: str) -> None:
    code = f"import {package}, sys; assert 'kubernetes_asyncio' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)
