"""Plug-in variants (docs/VARIANTS.md): examples/plugins/random_sam.py loaded through SAMLAB_PLUGINS in a
fresh process runs in every lab, and a broken plug-in is refused with a message naming its file while
everything else keeps working."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

import sam_core
from sam_core.variants.plugins import RESERVED_HPARAMS

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "plugins" / "random_sam.py"

# Everything below runs in a child process that got SAMLAB_PLUGINS; it prints one JSON line of findings.
CHILD = r"""
import json, math, warnings
import numpy as np
import torch
import sam_core
from sam_core import rules
from sam_core.landscape.functions import make_landscape

out = {"variants": list(sam_core.VARIANTS), "errors": sam_core.plugin_errors(),
       "source": sam_core.VARIANTS["random_sam"].source}

# --- make_optimizer on a small network: the step is SGD at w + e with ‖e‖ = ρ, e not along g
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1)).double()
X, Y = torch.randn(32, 5, dtype=torch.float64), torch.randn(32, 1, dtype=torch.float64)
loss_of = lambda: ((model(X) - Y) ** 2).mean()
w0 = [p.detach().clone() for p in model.parameters()]
opt = sam_core.make_optimizer("random_sam", model.parameters(), lr=0.1, rho=0.2, dir_seed=7)
def closure():
    opt.zero_grad(); l = loss_of(); l.backward(); return l
opt.step(closure)
w1 = [p.detach().clone() for p in model.parameters()]
# independent: rebuild e from the rule at w0, the gradient at w0 + e by autograd, one plain SGD step
with torch.no_grad():
    for p, w in zip(model.parameters(), w0): p.copy_(w)
g = torch.autograd.grad(loss_of(), list(model.parameters()))
hp = sam_core.resolve_hparams("random_sam", rho=0.2, dir_seed=7)
e = rules.perturbations("random_sam", list(g), w0, hp, {}, 1)[0]
with torch.no_grad():
    for p, w, ei in zip(model.parameters(), w0, e): p.copy_(w + ei)
g_adv = torch.autograd.grad(loss_of(), list(model.parameters()))
ref = [w - 0.1 * ga for w, ga in zip(w0, g_adv)]
flat = lambda ts: torch.cat([t.reshape(-1) for t in ts])
out["opt_err"] = float((flat(w1) - flat(ref)).abs().max())
out["e_norm"] = float(flat(e).norm())
out["cos_e_g"] = float(torch.nn.functional.cosine_similarity(flat(e), flat(g), dim=0))
out["stats_pert_norm"] = float(opt.stats["perturbation_norm"])
e_again = rules.perturbations("random_sam", list(g), w0, hp, {}, 1)[0]
e_seed = rules.perturbations("random_sam", list(g), w0, dict(hp, dir_seed=8), {}, 1)[0]
e_step = rules.perturbations("random_sam", list(g), w0, hp, {}, 2)[0]
out["same_again"] = bool(torch.equal(flat(e), flat(e_again)))
out["differs_seed_step"] = bool(not torch.allclose(flat(e), flat(e_seed)) and not torch.allclose(flat(e), flat(e_step)))
# u is standard normal: many elements, mean ≈ 0, var ≈ 1 (the direction before normalising)
u = __import__("samlab_plugin_random_sam").gaussian_direction([torch.zeros(20000, dtype=torch.float64)], 3, 5, 0)[0]
out["u_mean"], out["u_std"] = float(u.mean()), float(u.std())
out["u_tail"] = float((u.abs() > 1.96).double().mean())

# --- simulate: eager (recorded) and compiled agree; the recorded ascent points lie at distance ρ
L = make_landscape("quartic")
w = torch.tensor([[1.0, 0.5], [-0.7, 0.3], [0.2, -1.1]], dtype=torch.float32)
rec = sam_core.simulate("random_sam", L.grad_fn, w, 40, 0.05, hp={"rho": 0.1}, record=True)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    comp = sam_core.simulate("random_sam", L.grad_fn, w, 40, 0.05, hp={"rho": 0.1}, record=False, compile=True)
out["compile_warnings"] = [str(c.message) for c in caught if "compil" in str(c.message)]
from sam_core.simulate import _FUSED
out["compiled_cached"] = any(k[0] == "random_sam" for k in _FUSED)
out["sim_err"] = float((rec.final - comp.final).abs().max())
out["sim_moved"] = float((rec.final - w).abs().max())
out["ascent_dist"] = (rec.ascent - rec.w[:-1]).norm(dim=-1).flatten().tolist()[:10]
# a separate eager step-by-step check of step 1: w1 = w0 − lr ∇L(w0 + e1)
hpv = sam_core.resolve_hparams("random_sam", rho=0.1)
e1 = rules.perturbations("random_sam", [L.grad_fn(w)[1]], [w], hpv, {}, 1, 1)[0][0]
out["sim_step1_err"] = float((rec.w[1] - (w - 0.05 * L.grad_fn(w + e1)[1])).abs().max())

# --- the saddle and edge-of-stability runners
from sam_core.dynamics.saddle import SaddleConfig, run_saddle
from sam_core.dynamics.eos import EoSConfig, run_eos
*_, (p, sres) = run_saddle(["sgd", "random_sam"], rhos=[0.05], seeds=[0, 1],
                           config=SaddleConfig(d=5, epochs=4, n_samples=100, batch_size=50), yield_every_s=100)
out["saddle"] = [p, bool(np.isfinite(sres.loss["random_sam"]).all()), sres.epochs_done]
*_, (p, eres) = run_eos(["random_sam"], EoSConfig(n=64, in_dim=5, width=8, depth=1, steps=12, eig_every=6),
                        yield_every_s=100)
out["eos"] = [p, eres.steps_done, bool(np.isfinite(eres.sam_edge["random_sam"]).all()),
              bool(np.isfinite(eres.top_eig["random_sam"]).all())]

# --- the Landscape page: the picker lists it and the race draws its path
import base64
from streamlit.testing.v1 import AppTest
at = AppTest.from_file("pages/landscape.py", default_timeout=90)
at.run()
ms = at.multiselect(key="ls_variants")
out["picker"] = "random_sam" in ms.options or any("Random-direction SAM" in o for o in ms.options)
ms.select("random_sam").run()
out["page_exc"] = [str(e.value) for e in at.exception]
from ui.plotly_live import drawn_figures
spec = drawn_figures(at)["ls_contour"]
def arr(v):
    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
    return np.asarray(v, dtype=float)
drawn = {tr.get("legendgroup"): len(arr(tr["x"])) for tr in spec["data"]
         if tr.get("type") == "scatter" and tr.get("mode") == "lines" and tr.get("name") and tr.get("legendgroup")}
out["drawn"] = drawn
print("RESULT " + json.dumps(out))
"""


def _env(**extra) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", **extra)
    env.pop("SAMLAB_PLUGINS", None)
    env.update(extra)
    return env


def test_example_plugin_in_a_fresh_process_runs_in_every_lab(tmp_path):
    env = _env(SAMLAB_PLUGINS=str(EXAMPLE.relative_to(ROOT)))
    run = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, cwd=ROOT, env=env, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    line = [x for x in run.stdout.splitlines() if x.startswith("RESULT ")][-1]
    r = json.loads(line[len("RESULT ") :])
    assert r["errors"] == [] and r["variants"][-1] == "random_sam" and r["source"] == str(EXAMPLE)
    # make_optimizer: one plain SGD step at w + e, ‖e‖ = ρ, e not the gradient direction, seeded
    assert r["opt_err"] < 1e-12
    assert abs(r["e_norm"] - 0.2) < 1e-12 and abs(r["stats_pert_norm"] - 0.2) < 1e-12
    assert abs(r["cos_e_g"]) < 0.9
    assert r["same_again"] and r["differs_seed_step"]
    assert abs(r["u_mean"]) < 0.03 and abs(r["u_std"] - 1) < 0.03 and abs(r["u_tail"] - 0.05) < 0.01
    # simulate: compiled (no fallback warning, a cached compiled step) agrees with the eager loop
    assert r["compile_warnings"] == [] and r["compiled_cached"]
    assert r["sim_err"] < 1e-5 and r["sim_moved"] > 1e-3 and r["sim_step1_err"] < 1e-6
    assert all(abs(d - 0.1) < 1e-5 for d in r["ascent_dist"])
    # the dynamics runners finish with finite curves (and a SAM edge for the plug-in)
    assert r["saddle"] == [1.0, True, 4]
    assert r["eos"][0] == 1.0 and r["eos"][1] == 12 and r["eos"][2] and r["eos"][3]
    # the Landscape page lists it and the race draws it beside the defaults
    assert r["picker"] and r["page_exc"] == []
    assert set(r["drawn"]) >= {"sgd", "sam", "ssam", "random_sam"} and r["drawn"]["random_sam"] > 10


def test_example_plugin_trains_through_the_cli(tmp_path):
    empty = tmp_path / "no-data"
    empty.mkdir()
    env = _env(
        SAMLAB_PLUGINS=str(EXAMPLE), SAMLAB_DATA=str(empty), SAMLAB_OFFLINE="1", SAMLAB_RUNS_DIR=str(tmp_path / "runs")
    )
    cmd = [
        sys.executable,
        "-m",
        "sam_core.cli.train",
        "--dataset",
        "digits",
        "--model",
        "mlp",
        "--optimizer",
        "random_sam",
        "--rho",
        "0.05",
        "--dir-seed",
        "3",
        "--lr",
        "0.05",
        "--batch-size",
        "64",
        "--epochs",
        "1",
        "--subset",
        "256",
        "--hessian-every",
        "0",
        "--log-every",
        "1",
        "--final-top-k",
        "0",
        "--final-density",
        "false",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=180, env=env)
    assert out.returncode == 0, out.stderr + out.stdout
    run_id = out.stdout.strip().splitlines()[-1]
    from sam_core.training import RunStore

    store = RunStore(tmp_path / "runs")
    info = store.get(run_id)
    assert info.status == "finished", f"{info.status} {info.message}"
    assert info.config["optimizer"] == "random_sam" and info.config["hparams"]["dir_seed"] == 3
    m = store.metrics(run_id)
    assert info.step == 4 and m["loss"].notna().sum() == 4
    assert ((m["perturbation_norm"].dropna() - 0.05).abs() < 1e-6).all()


# ------------------------------------------------------------------------------------------ broken plug-ins
def _load(tmp_path, name: str, code: str) -> tuple[list[str], list[str]]:
    f = tmp_path / name
    f.write_text(textwrap.dedent(code))
    before = list(sam_core.VARIANTS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        names = sam_core.load_plugins(str(f))
    assert list(sam_core.VARIANTS) == before  # nothing registered, the built-ins untouched
    return names, [str(c.message) for c in caught]


HEADER = """
    from sam_core.registry import VariantSpec, HParam, rho_param
    from sam_core.rules import scale, EPS
"""


@pytest.mark.parametrize(
    "case,code,expect",
    [
        ("import_error", "import no_such_module_xyz\n", "failed to import: ModuleNotFoundError"),
        ("no_spec", "X = 1\n", "defines neither SPEC"),
        (
            "clash",
            HEADER
            + """
    SPEC = VariantSpec(name="sam", label="x", passes=2, summary="s", formula="f", reference="r",
                       hparams={"rho": rho_param(0.1)}, ascent=lambda s: [scale(s.g, s.hp["rho"], s.bd)])
    """,
            "'sam' is already taken by a built-in variant",
        ),
        (
            "python_if",
            HEADER
            + """
    def ascent(s):
        if s.g_norm > 1:  # a Python if on a tensor: ambiguous for a batch of trajectories
            return [scale(s.g, s.hp["rho"], s.bd)]
        return [scale(s.g, 2 * s.hp["rho"], s.bd)]
    SPEC = VariantSpec(name="iffy_sam", label="x", passes=2, summary="s", formula="f", reference="r",
                       hparams={"rho": rho_param(0.1)}, ascent=ascent)
    """,
            "a Python `if` or `bool()` on a tensor",
        ),
        (
            "shapes",
            HEADER
            + """
    SPEC = VariantSpec(name="flat_sam", label="x", passes=2, summary="s", formula="f", reference="r",
                       hparams={"rho": rho_param(0.1)}, ascent=lambda s: [[x.reshape(-1) for x in s.g]])
    """,
            "a perturbation has shape",
        ),
        (
            "passes",
            HEADER
            + """
    SPEC = VariantSpec(name="three_sam", label="x", passes=3, summary="s", formula="f", reference="r",
                       hparams={"rho": rho_param(0.1)}, ascent=lambda s: [scale(s.g, s.hp["rho"], s.bd)])
    """,
            "ascent returned 1 perturbation(s), passes=3 needs 2",
        ),
        (
            "reserved",
            HEADER
            + """
    SPEC = VariantSpec(name="lr_sam", label="x", passes=2, summary="s", formula="f", reference="r",
                       hparams={"rho": rho_param(0.1), "lr": HParam("lr", 0.1, low=0, high=1)},
                       ascent=lambda s: [scale(s.g, s.hp["rho"], s.bd)])
    """,
            "'lr' clashes with a base-optimizer / training option",
        ),
        (
            "default_range",
            HEADER
            + """
    SPEC = VariantSpec(name="range_sam", label="x", passes=2, summary="s", formula="f", reference="r",
                       hparams={"rho": rho_param(0.1), "k": HParam("k", 5.0, low=0, high=1)},
                       ascent=lambda s: [scale(s.g, s.hp["rho"], s.bd)])
    """,
            "default out of range",
        ),
    ],
)
def test_a_broken_plugin_is_refused_with_its_file_named(tmp_path, case, code, expect):
    names, msgs = _load(tmp_path, f"{case}.py", code)
    assert names == []
    path = str(tmp_path / f"{case}.py")
    assert any(path in m and expect in m for m in msgs), msgs
    assert any(path in m and expect in m for m in sam_core.plugin_errors())
    # everything else keeps working
    assert sam_core.make_optimizer("sam", [__import__("torch").nn.Parameter(__import__("torch").ones(2))], lr=0.1)


def test_load_plugins_strict_raises_and_a_missing_module_is_named():
    with pytest.raises(sam_core.PluginError, match="no_such_plugin_module_q"):
        sam_core.load_plugins("no_such_plugin_module_q", strict=True)


def test_reserved_names_cover_the_base_optimizer_and_cli_options():
    # an hyperparameter named like one of these would be taken from the base optimizer's kwargs / CLI flags
    assert {"lr", "momentum", "weight_decay", "seed", "epochs", "batch_size"} <= RESERVED_HPARAMS


def test_read_only_hosting_has_no_way_to_load_code_from_the_browser():
    # the only entry points are the environment and load_plugins() in code: no page or ui module calls it
    hits = []
    for d in ("pages", "ui"):
        for f in (ROOT / d).rglob("*.py"):
            text = f.read_text()
            if "load_plugins" in text or "spec_from_file_location" in text or "exec(" in text:
                hits.append(str(f))
    assert hits == []
