"""The dependency layers of pyproject.toml are true: the requirements files are generated from them, every
third-party import is declared in its layer, and the core imports without the dashboard's packages."""

import ast
import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("requirements_script", ROOT / "scripts" / "requirements.py")
reqs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reqs)

# import name → distribution name, for the third-party packages the project uses
DISTRIBUTION = {
    "torch": "torch",
    "numpy": "numpy",
    "pandas": "pandas",
    "torchvision": "torchvision",
    "sklearn": "scikit-learn",
    "streamlit": "streamlit",
    "plotly": "plotly",
    "ray": "ray",
    "pytest": "pytest",
    "playwright": "playwright",
    "pytorch_optimizer": "pytorch-optimizer",
    "websockets": "websockets",
}
LOCAL = {"sam_core", "ui", "pages", "demos", "tests", "benchmarks", "app", "examples"} | {
    p.stem for d in ("tests", "tests/e2e", "benchmarks", "examples/plugins", "scripts") for p in (ROOT / d).glob("*.py")
}


def _layers() -> dict[str, set[str]]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    name = lambda r: r.split(">")[0].split("=")[0].split("[")[0].split("<")[0].strip()  # noqa: E731
    out = {"core": {name(r) for r in meta["dependencies"]}}
    for extra in meta["optional-dependencies"]:
        out[extra] = {name(r) for r in reqs._expand(meta["optional-dependencies"], extra, meta["name"])}
    return out


def _imports(paths) -> dict[str, set[str]]:
    """Top-level third-party package → files importing it."""
    found: dict[str, set[str]] = {}
    for p in paths:
        for node in ast.walk(ast.parse(p.read_text(), str(p))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for n in names:
                top = n.split(".")[0]
                if top not in sys.stdlib_module_names and top not in LOCAL:
                    found.setdefault(top, set()).add(str(p.relative_to(ROOT)))
    return found


def test_requirements_files_are_generated_from_pyproject():
    for name, text in reqs.render().items():
        assert (ROOT / name).read_text() == text, f"{name} is stale: run `python scripts/requirements.py`"


def test_every_third_party_import_is_declared_in_its_layer():
    layers = _layers()
    runtime = layers["core"] | layers["dashboard"] | layers["ray"]
    shipped = [
        *(ROOT / "sam_core").rglob("*.py"),
        *(ROOT / "ui").rglob("*.py"),
        *(ROOT / "pages").glob("*.py"),
        *(ROOT / "demos").glob("*.py"),
        ROOT / "app.py",
    ]
    for top, files in _imports(shipped).items():
        assert top in DISTRIBUTION, f"{top} (imported by {sorted(files)}) is not a known dependency"
        assert DISTRIBUTION[top] in runtime, f"{DISTRIBUTION[top]} (imported by {sorted(files)}) is not declared"
    dev_files = [*(ROOT / "tests").rglob("*.py"), *(ROOT / "benchmarks").glob("*.py")]
    for top, files in _imports(dev_files).items():
        assert DISTRIBUTION.get(top) in runtime | layers["dev"], f"{top} (imported by {sorted(files)}) is not declared"


def test_the_core_and_the_labs_import_without_the_dashboard_packages():
    """torch, numpy and pandas suffice for sam_core: streamlit, plotly, torchvision, scikit-learn and Ray are
    imported only where they are used (pages, figures, datasets, the Ray executor)."""
    code = """
import sys
for name in ("streamlit", "plotly", "torchvision", "sklearn", "ray"):  # as if not installed: import fails
    sys.modules[name] = None
import sam_core
import sam_core.landscape.race, sam_core.landscape.lr_sweep, sam_core.dynamics.saddle, sam_core.dynamics.eos
import sam_core.dynamics.quadratics, sam_core.training.loop, sam_core.training.store, sam_core.training.sweeps
import sam_core.cli.train, sam_core.cli.runs, sam_core.cli.sweep, sam_core.presets
import torch
opt = sam_core.make_optimizer("ssam", [torch.nn.Parameter(torch.ones(2))], base_optimizer=torch.optim.SGD, lr=0.1)
print("ok", type(opt).__name__)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0 and out.stdout.startswith("ok"), out.stderr[-2000:]
