"""Data-parallel training through the real command: `python -m torch.distributed.run --nproc_per_node 2
--standalone -m sam_core.cli.train …` on the CPU (gloo), a tiny LeNet on a tiny CIFAR-10 in the real format.

* default (m-sharpness): the store holds one finished run with its metrics (written by rank 0 only),
  both ranks end with bit-identical weights (each rank dumps its own weights; compared here, not
  trusted from the run's own `rank_weight_diff` metric), the checkpoint holds those weights, and the
  result differs from global-batch SAM (each rank really perturbed with its own gradient);
* `--sync-perturbation`: the 2-process run equals a single-process run of the same config (the two
  ranks' halves of every batch together are the single-process batch), weights and logged metrics;
* the batch split (`shard_plan`) gives each rank disjoint columns that together are the whole plan.
"""

import json
import os
import subprocess
import sys

import pytest
import torch
from fakes import write_fake_cifar10

from sam_core.training import RunConfig, RunStore, worker
from sam_core.training.data import epoch_plan, shard_plan
from sam_core.training.distributed import check_batch
from sam_core.training.models import build_model

pytestmark = pytest.mark.slow  # torchrun launches (a few seconds each); `make test` runs them

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

BASE = dict(
    dataset="cifar10",
    model="lenet5",
    optimizer="ssam",
    hparams={"rho": 0.05},
    lr=0.05,
    batch_size=32,
    epochs=1,
    log_every=2,
    hessian_every=4,
    hessian_batch=32,
    final_top_k=0,
    final_density=False,
    eval_train_size=64,
    download=False,
    device="cpu",
    augment=True,
)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    base = tmp_path_factory.mktemp("ddp")
    write_fake_cifar10(base / "data", n_train=256, n_test=32, seed=0)
    mp = pytest.MonkeyPatch()
    mp.setenv("SAMLAB_DATA", str(base / "data"))
    mp.setenv("SAMLAB_OFFLINE", "1")
    mp.setenv("OMP_NUM_THREADS", "1")
    yield base
    mp.undo()


def torchrun(env, tmp_path, *extra):
    """Launch the 2-process job; returns (store, run id, rank-0 weights, rank-1 weights)."""
    cfg_file = tmp_path / "run.json"
    cfg_file.write_text(json.dumps(dict(BASE, data_dir=str(env / "data"))))
    dbg = tmp_path / "dbg"
    e = dict(os.environ, SAMLAB_DDP_DEBUG_DIR=str(dbg))
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        e.pop(k, None)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--standalone",
        "-m",
        "sam_core.cli.train",
        "--config",
        str(cfg_file),
        "--runs-dir",
        str(tmp_path / "runs"),
        *extra,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300, env=e)
    assert out.returncode == 0, out.stderr[-4000:] + out.stdout
    run_id = out.stdout.strip().splitlines()[-1]
    return RunStore(tmp_path / "runs"), run_id, torch.load(dbg / "rank0.pt"), torch.load(dbg / "rank1.pt")


@pytest.fixture(scope="module")
def single(env, tmp_path_factory):
    """The same config trained by one process (in this one), for comparison."""
    store = RunStore(tmp_path_factory.mktemp("single") / "runs")
    rid = worker.create(store, RunConfig(**dict(BASE, data_dir=str(env / "data"))))
    assert worker.execute(store, rid, max_concurrent=1) == "finished", store.get(rid).traceback
    ck = torch.load(store.checkpoint_path(rid), weights_only=False)
    w = torch.cat([v.reshape(-1) for v in ck["replicas"][0]["model"].values()])
    return store, rid, w


def flat_checkpoint(store, rid):
    ck = torch.load(store.checkpoint_path(rid), weights_only=False)
    return torch.cat([v.reshape(-1) for v in ck["replicas"][0]["model"].values()])


def test_two_ranks_m_sharpness(env, tmp_path, single):
    store, rid, w0, w1 = torchrun(env, tmp_path)
    runs = store.list_runs()
    assert [r.id for r in runs] == [rid]  # rank 1 created nothing
    info = runs[0]
    assert info.status == "finished" and info.step == info.total_steps == 8, info.message + info.traceback
    m = store.metrics(rid)
    assert m.dropna(subset=["loss"]).index.tolist() == [2, 4, 6, 8]
    assert m["gamma"].notna().sum() == 4 and m["top_eig"].dropna().index.tolist() == [0, 4, 8]
    assert m["test_acc"].notna().sum() == 1
    assert m["rank_weight_diff"].dropna().tolist() == [0.0]
    assert store.get_artifact(rid, "distributed") == {
        "world_size": 2,
        "backend": "gloo",
        "sync_perturbation": False,
        "per_rank_batch": 16,
    }
    # both ranks ended bit-identical, and the checkpoint (written by rank 0) holds those weights
    assert torch.equal(w0, w1)
    assert torch.equal(flat_checkpoint(store, rid), w0)
    # each rank ascended along its own half-batch gradient: not the global-batch (single-process) result
    assert (w0 - single[2]).abs().max() > 1e-4


def test_sync_perturbation_equals_single_process(env, tmp_path, single):
    store, rid, w0, w1 = torchrun(env, tmp_path, "--sync-perturbation")
    assert torch.equal(w0, w1)
    info = store.get(rid)
    assert info.status == "finished" and info.config["sync_perturbation"] is True
    s_store, s_rid, w_single = single
    init = torch.cat([p.detach().reshape(-1) for p in build_model("lenet5", 3, 32, 10, seed=0).state_dict().values()])
    assert (w_single - init).abs().max() > 1e-3  # it trained
    torch.testing.assert_close(w0, w_single, rtol=1e-4, atol=1e-5)
    a, b = store.metrics(rid), s_store.metrics(s_rid)
    for col in ("loss", "grad_norm", "perturbed_grad_norm", "gamma", "accuracy", "test_acc", "top_eig"):
        torch.testing.assert_close(
            torch.tensor(a[col].dropna().to_numpy()),
            torch.tensor(b[col].dropna().to_numpy()),
            rtol=1e-3,
            atol=1e-5,
            msg=col,
        )


def test_single_process_run_resumed_on_two_ranks(env, tmp_path):
    """Stopped after epoch 1 by one process, resumed by `torchrun … --run-id ID`: rank 0 reads the
    checkpoint and hands it to rank 1 (identical final weights prove rank 1 loaded it too: DDP only
    syncs weights when it wraps the model, before the checkpoint is loaded)."""
    from sam_core.training.loop import Trainer

    store = RunStore(tmp_path / "runs")
    cfg = RunConfig(**dict(BASE, data_dir=str(env / "data"), epochs=2, hessian_every=0))
    rid = worker.create(store, cfg)
    store.claim_slot(rid, 1)
    assert Trainer(cfg, store, rid, on_epoch=lambda *a: True).run() == "stopped"
    assert store.get(rid).step == 8
    dbg = tmp_path / "dbg"
    e = dict(os.environ, SAMLAB_DDP_DEBUG_DIR=str(dbg))
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        e.pop(k, None)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--standalone",
            "-m",
            "sam_core.cli.train",
            "--run-id",
            rid,
            "--runs-dir",
            str(tmp_path / "runs"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env=e,
    )
    assert out.returncode == 0, out.stderr[-4000:] + out.stdout
    info = store.get(rid)
    assert info.status == "finished" and info.step == 16, info.message + info.traceback
    m = store.metrics(rid)
    assert m.dropna(subset=["loss"]).index.tolist() == [2, 4, 6, 8, 10, 12, 14, 16]
    assert m["rank_weight_diff"].dropna().tolist() == [0.0]  # logged by the DDP epoch only
    w0, w1 = torch.load(dbg / "rank0.pt"), torch.load(dbg / "rank1.pt")
    assert torch.equal(w0, w1) and torch.equal(flat_checkpoint(store, rid), w0)


def test_shard_plan_splits_every_batch():
    plan = epoch_plan(100, 12, seed=3, epoch=2, augment=True)
    parts = [shard_plan(plan, r, 3) for r in range(3)]
    assert all(p.idx.shape == (8, 4) for p in parts)
    for name in ("idx", "flip", "dx", "dy"):
        torch.testing.assert_close(torch.cat([getattr(p, name) for p in parts], 1), getattr(plan, name))
    assert shard_plan(plan, 0, 1) is plan
    with pytest.raises(ValueError, match="batch_size 30 must be divisible by the number of processes \\(4\\)"):
        check_batch(30, 4)
