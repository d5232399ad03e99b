"""Data-parallel SAM: 2 CPU processes (gloo) must keep identical weights, and global-batch SAM on
identical shards must equal a single-process run."""

import json
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import sam_core

VARIANTS = ["sam", "ssam", "bsam", "infosam", "sgd", "gsam", "wsam", "fsam", "looksam", "msam"]
STEPS = 4


def make_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).double()


def shard(rank, same):
    g = torch.Generator().manual_seed(0 if same else 100 + rank)
    return torch.randn(16, 6, generator=g, dtype=torch.float64), torch.randint(0, 3, (16,), generator=g)


def train(model, opt, x, y):
    for _ in range(STEPS):

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            return loss

        opt.step(closure)
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CONFIGS = {"local": (False, False), "same_sync": (True, True), "global": (False, True)}  # (same data, sync)


def _worker(rank, world, port, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    result = {}
    for name, (same, sync) in CONFIGS.items():
        for variant in VARIANTS:
            model = make_model()
            ddp = torch.nn.parallel.DistributedDataParallel(model)
            kw = {} if variant == "sgd" else {"rho": 0.2}
            opt = sam_core.make_optimizer(variant, ddp.parameters(), lr=0.1, momentum=0.9, **kw)
            opt.distributed(ddp, sync_perturbation=sync)
            x, y = shard(rank, same)
            w = train(ddp, opt, x, y)
            gathered = [torch.zeros_like(w) for _ in range(world)]
            dist.all_gather(gathered, w)
            result[f"{name}/{variant}"] = [g.tolist() for g in gathered]
    if rank == 0:
        with open(os.path.join(out_dir, "result.json"), "w") as f:
            json.dump(result, f)
    dist.barrier()
    dist.destroy_process_group()
    # results are on disk: skip interpreter teardown, where Gloo's threads occasionally abort the process
    # ("terminate called without an active exception"), which mp.spawn would report as a failure
    os._exit(0)


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory):
    """One 2-process run covering every configuration (spawning costs seconds)."""
    out = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(2, _free_port(), str(out)), nprocs=2, join=True)
    with open(out / "result.json") as f:
        return {k: [torch.tensor(r, dtype=torch.float64) for r in v] for k, v in json.load(f).items()}


@pytest.mark.parametrize("variant", VARIANTS)
def test_weights_identical_across_ranks(ddp_results, variant):
    w0, w1 = ddp_results[f"local/{variant}"]
    torch.testing.assert_close(w0, w1, rtol=0, atol=1e-12)
    assert not torch.allclose(w0, torch.cat([p.detach().reshape(-1) for p in make_model().parameters()]))


def test_sync_perturbation_on_identical_shards_equals_single_process(ddp_results):
    x, y = shard(0, same=True)
    for variant in VARIANTS:
        model = make_model()
        kw = {} if variant == "sgd" else {"rho": 0.2}
        single = train(model, sam_core.make_optimizer(variant, model.parameters(), lr=0.1, momentum=0.9, **kw), x, y)
        torch.testing.assert_close(ddp_results[f"same_sync/{variant}"][0], single, rtol=1e-10, atol=1e-12)


def test_m_sharpness_differs_from_global_sam_on_different_shards(ddp_results):
    glob, local = ddp_results["global/sam"], ddp_results["local/sam"]
    assert not torch.allclose(glob[0], local[0], atol=1e-8)
    torch.testing.assert_close(glob[0], glob[1], rtol=0, atol=1e-12)
