"""convzoo.scratch is NumPy only: no module of it imports torch, and it runs without torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SCRATCH = Path(__file__).resolve().parents[2] / "src" / "convzoo" / "scratch"


def test_no_module_imports_torch():
    files = sorted(SCRATCH.glob("*.py"))
    assert files
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] if node.level == 0 else []
                assert node.level == 1 or node.module, path  # only siblings, relatively
                if node.level > 1:
                    raise AssertionError(f"{path.name} imports from outside convzoo.scratch")
            for name in names:
                assert name.split(".")[0] not in ("torch", "convzoo"), f"{path.name}: {name}"


def test_runs_with_torch_blocked():
    # Load the folder as a stand-alone package with `import torch` made to fail.
    code = f"""
import importlib.util, sys
sys.modules["torch"] = None
spec = importlib.util.spec_from_file_location(
    "scratch", {str(SCRATCH / "__init__.py")!r}, submodule_search_locations=[{str(SCRATCH)!r}])
mod = importlib.util.module_from_spec(spec)
sys.modules["scratch"] = mod
spec.loader.exec_module(mod)
import numpy as np
net = mod.lenet5(seed=0)
loss = mod.CrossEntropyLoss()
loss.forward(net.forward(np.zeros((2, 1, 28, 28), np.float32)), np.array([1, 2]))
net.backward(loss.backward())
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
