"""End to end: real worker processes train a tiny network on a tiny dataset in the real CIFAR-10 format.

* the headless command of the README trains, prints its run id last, and the store holds γ_t and the
  top Hessian eigenvalue (checked against an independent power iteration on the saved weights) and the
  edges (checked against their closed forms);
* a run stopped mid-way and resumed from its checkpoint ends with exactly the metrics of the same run
  left alone (step counter and metrics continue, nothing lost or repeated);
* a worker killed with SIGKILL is marked failed, its metrics kept, and a resume completes it.
"""

import math
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from fakes import write_fake_cifar10

from sam_core.training import RunConfig, RunStore, launch, resume
from sam_core.training.data import load_raw, prepare
from sam_core.training.models import build_model

pytestmark = pytest.mark.slow  # worker processes (a few seconds each); `make test` runs them

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMING = {"step_time", "images_per_s", "hessian_time"}  # wall-clock: differs between runs


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    base = tmp_path_factory.mktemp("e2e")
    write_fake_cifar10(base / "data", n_train=448, n_test=64, seed=0)
    mp = pytest.MonkeyPatch()
    mp.setenv("SAMLAB_DATA", str(base / "data"))
    mp.setenv("SAMLAB_OFFLINE", "1")
    mp.setenv("SAMLAB_MAX_RUNS", "2")
    mp.setenv("OMP_NUM_THREADS", "1")  # deterministic and fast on a shared 2-core machine
    yield base
    mp.undo()


def wait_for(store: RunStore, run_id: str, statuses, timeout: float = 120.0, min_step: int | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = [r for r in store.list_runs() if r.id == run_id][0]
        if min_step is not None and info.status == "running" and info.step >= min_step:
            return info
        if info.status in statuses:
            return info
        if min_step is not None and info.status not in ("queued", "running"):
            raise AssertionError(f"run ended before step {min_step}: {info.status} {info.message}\n{info.traceback}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {run_id}: {info.status} step {info.step}\n{info.traceback}")


def power_iteration(model, x, y, iters=150, shift=0.0):
    """An independent top-|λ| estimate of H + shift·I: plain power iteration with double-backward HVPs, in
    eval mode (with shift ≥ |λ_min| every eigenvalue is ≥ 0, and it finds the algebraic top λ_max + shift)."""
    model.eval()
    params = [p for p in model.parameters()]
    loss = F.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, params, create_graph=True)
    v = [torch.randn_like(p) for p in params]
    lam = 0.0
    for _ in range(iters):
        n = torch.sqrt(sum((t * t).sum() for t in v))
        v = [t / n for t in v]
        hv = torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=True)
        hv = [h + shift * t for h, t in zip(hv, v)]
        lam = float(sum((a * b).sum() for a, b in zip(v, hv)))
        v = [t.detach() for t in hv]
    return lam


def test_headless_command_stores_gamma_eigenvalue_and_edges(env, tmp_path):
    runs = tmp_path / "runs"
    cmd = [
        sys.executable,
        "-m",
        "sam_core.cli.train",
        "--dataset",
        "cifar10",
        "--data-dir",
        str(env / "data"),
        "--model",
        "lenet5",
        "--optimizer",
        "ssam",
        "--rho",
        "0.05",
        "--lr",
        "0.05",
        "--epochs",
        "1",
        "--batch-size",
        "64",
        "--hessian-every",
        "5",
        "--runs-dir",
        str(runs),
        "--log-every",
        "1",
        "--hessian-batch",
        "32",
        "--final-top-k",
        "2",
        "--no-download",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300, env=dict(os.environ))
    assert out.returncode == 0, out.stderr + out.stdout
    run_id = out.stdout.strip().splitlines()[-1]
    store = RunStore(runs)
    info = store.get(run_id)
    assert info.status == "finished" and info.step == info.total_steps == 7  # 448 // 64

    listing = subprocess.run(
        [sys.executable, "-m", "sam_core.cli.runs", "list", "--runs-dir", str(runs)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert run_id in listing.stdout and "finished" in listing.stdout
    csv = tmp_path / "out.csv"
    subprocess.run(
        [sys.executable, "-m", "sam_core.cli.runs", "export", run_id, "--runs-dir", str(runs), "--csv", str(csv)],
        check=True,
        cwd=ROOT,
        timeout=120,
    )
    df = pd.read_csv(csv)
    for col in ("step", "epoch", "loss", "grad_norm", "perturbed_grad_norm", "gamma", "top_eig", "gd_edge", "sam_edge"):
        assert col in df.columns
    steps = df.dropna(subset=["gamma"])
    assert steps["step"].tolist() == list(range(1, 8))
    # γ_t of SSAM is ‖g‖/‖g_adv‖ of the same step
    ratio = steps["grad_norm"] / steps["perturbed_grad_norm"]
    assert ((steps["gamma"] - ratio).abs() <= 1e-5 * ratio).all()
    eig = df.dropna(subset=["top_eig"])
    assert eig["step"].tolist() == [0, 5]
    # edges: GD with momentum 2(1+β)/η; SSAM's unnormalised ascent e = ρg gives ηλ(1 + ρλ) = 2, ×(1+β)
    beta, eta, rho = 0.9, 0.05, 0.05
    assert eig["gd_edge"].tolist() == pytest.approx([2 * (1 + beta) / eta] * 2)
    usam_edge = (1 + beta) * (-1 + math.sqrt(1 + 8 * rho / eta)) / (2 * rho)
    assert eig["sam_edge"].tolist() == pytest.approx([usam_edge] * 2)

    # the final top eigenvalue against an independent power iteration on the saved final weights
    top = store.get_artifact(run_id, "top_eigenvalues")
    assert top["step"] == 7 and len(top["values"]) == 2
    ckpt = torch.load(store.checkpoint_path(run_id), weights_only=False)
    assert ckpt["step"] == 7
    model = build_model("lenet5", 3, 32, 10, seed=0)
    model.load_state_dict(ckpt["replicas"][0]["model"])
    data = prepare(load_raw("cifar10", env / "data", download=False))
    spec = data.spec
    mean, std = torch.tensor(spec.mean).view(1, 3, 1, 1), torch.tensor(spec.std).view(1, 3, 1, 1)
    x = (data.x_train[:32].float() / 255 - mean) / std
    torch.manual_seed(0)
    mag = abs(power_iteration(model, x, data.y_train[:32]))  # the largest |λ| (it may be a negative λ)
    lam = power_iteration(model, x, data.y_train[:32], iters=400, shift=mag) - mag  # λ_max, algebraic
    assert abs(top["values"][0] - lam) <= 0.02 * abs(lam), (top, lam)
    dens = store.get_artifact(run_id, "spectral_density")
    assert len(dens["grid"]) == len(dens["density"]) == 400


def _tiny(**kw) -> RunConfig:
    base = dict(
        dataset="cifar10",
        model="lenet5",
        optimizer="sam",
        hparams={"rho": 0.05},
        lr=0.05,
        subset=160,
        batch_size=16,
        epochs=6,
        log_every=1,
        hessian_every=7,
        hessian_batch=16,
        final_top_k=0,
        final_density=False,
        eval_train_size=64,
        test_subset=32,
        poll_seconds=0.0,
        download=False,
    )
    base.update(kw)
    return RunConfig(**base)


def test_stop_then_resume_continues_exactly(env, tmp_path):
    store = RunStore(tmp_path / "runs")
    cfg = _tiny()
    stopped_id = launch(store, cfg)
    reference_id = launch(store, cfg)  # the same run left alone (SAMLAB_MAX_RUNS=2: both at once)
    wait_for(store, stopped_id, ("finished", "failed"), min_step=15)
    store.request_stop(stopped_id)
    info = wait_for(store, stopped_id, ("stopped", "finished", "failed"))
    assert info.status == "stopped", info.message + info.traceback
    s = info.step
    assert 15 <= s < 60 and store.checkpoint_path(stopped_id).exists()
    before = store.metrics(stopped_id)
    assert before.index.max() == s  # everything up to the stop was written, nothing after
    resume(store, stopped_id)
    a = wait_for(store, stopped_id, ("finished", "failed"))
    b = wait_for(store, reference_id, ("finished", "failed"))
    assert a.status == b.status == "finished", a.traceback + b.traceback
    assert a.step == b.step == 60
    ma, mb = store.metrics(stopped_id), store.metrics(reference_id)
    assert list(ma.index) == list(mb.index) == list(range(0, 61))
    cols = sorted(set(mb.columns) - TIMING)
    assert sorted(set(ma.columns) - TIMING) == cols
    pd.testing.assert_frame_equal(ma[cols], mb[cols], rtol=1e-5, atol=1e-7)
    # the metrics written before the stop were kept as they were
    pd.testing.assert_frame_equal(
        ma.loc[:s, cols], before[cols].reindex(columns=cols), rtol=0, atol=0, check_dtype=False
    )
    assert ma["gamma"].notna().sum() == 60 and ma["top_eig"].notna().sum() == 9  # steps 0, 7, …, 56


def test_killed_worker_is_failed_keeps_metrics_and_resumes(env, tmp_path):
    store = RunStore(tmp_path / "runs")
    rid = launch(store, _tiny(epochs=8, hessian_every=0))
    info = wait_for(store, rid, ("finished", "failed"), min_step=25)
    os.kill(info.pid, signal.SIGKILL)
    dead = wait_for(store, rid, ("failed", "finished"), timeout=30)
    assert dead.status == "failed" and "killed" in dead.message
    kept = store.metrics(rid)
    assert kept.index.max() >= 25 and kept["loss"].notna().sum() >= 25
    resume(store, rid)
    done = wait_for(store, rid, ("finished", "failed"))
    assert done.status == "finished" and done.step == 80, done.traceback
    m = store.metrics(rid)
    assert list(m.dropna(subset=["loss"]).index) == list(range(1, 81))  # continuous, nothing lost
