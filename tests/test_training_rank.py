"""The rank object of the training loop (`distributed.SingleProcess` / `DistContext`), and the one
definitions the training lab shares: the steps of an epoch, its validation error."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import torch

from sam_core.training import ConfigError, RunConfig, RunStore
from sam_core.training.data import DATASETS, PlanDataLoader, epoch_plan, steps_per_epoch
from sam_core.training.distributed import SINGLE, DistContext, NullStore, SingleProcess
from sam_core.training.sweeps import SweepError, SweepSpec, parse_values


def _public(cls) -> dict[str, object]:
    return {k: v for k, v in vars(cls).items() if not k.startswith("_")}


def test_single_process_and_ranks_offer_the_same_interface():
    """The loop calls its rank without knowing which kind it has: every name of the single-process rank
    exists on a torchrun rank, methods with the same parameters."""
    ranks = [DistContext(0, 2, 0, "gloo"), DistContext(1, 2, 1, "gloo")]
    for name, member in _public(SingleProcess).items():
        for r in ranks:
            assert hasattr(r, name), name
            if callable(member):
                assert list(inspect.signature(member).parameters) == list(
                    inspect.signature(getattr(DistContext, name)).parameters
                ), name
    assert (SINGLE.rank, SINGLE.world, SINGLE.is_main, SINGLE.shard) == (0, 1, True, (0, 1))
    assert [(r.is_main, r.shard) for r in ranks] == [(True, (0, 2)), (False, (1, 2))]


def test_a_single_process_writes_measures_and_stops_by_itself(tmp_path):
    store = RunStore(tmp_path / "runs")
    assert SINGLE.store(store) is store
    said: list[str] = []
    SINGLE.echo(said.append)("hello")
    assert said == ["hello"]
    SINGLE.echo(None)("dropped")  # no echo given: silent, not a crash
    assert SINGLE.on_main(lambda a, b: a + b, 2, 3, default="no") == 5
    assert SINGLE.stop_now(True) is True and SINGLE.stop_now(False) is False
    m = torch.arange(6.0).view(2, 3)
    out, stop = SINGLE.reduce_window(m, True)
    assert torch.equal(out, m) and stop is True
    assert SINGLE.epoch_metrics(torch.nn.Linear(2, 2)) == {}
    lin = torch.nn.Linear(2, 2)
    assert SINGLE.wrap(lin, None, torch.device("cpu"), False) is lin
    rid = store.create_run({"optimizer": "sam"})
    assert SINGLE.load_checkpoint(store, rid, torch.device("cpu")) is None  # no checkpoint yet
    state = {"step": 7, "w": torch.ones(3)}
    path = Path(store.checkpoint_path(rid))
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    got = SINGLE.load_checkpoint(store, rid, torch.device("cpu"))
    assert got["step"] == 7 and torch.equal(got["w"], torch.ones(3))


def test_ranks_other_than_zero_write_nothing_and_leave_the_measurements_to_rank_zero(tmp_path):
    store = RunStore(tmp_path / "runs")
    rank0, rank1 = DistContext(0, 2, 0, "gloo"), DistContext(1, 2, 1, "gloo")
    assert rank0.store(store) is store
    assert isinstance(rank1.store(store), NullStore)
    said: list[str] = []
    rank0.echo(said.append)("rank 0")
    rank1.echo(said.append)("rank 1")
    assert said == ["rank 0"]
    called: list[int] = []
    assert rank0.on_main(lambda: called.append(0) or "done", default="skipped") == "done"
    assert rank1.on_main(lambda: called.append(1) or "done", default="skipped") == "skipped"
    assert called == [0]
    # a request on one rank waits for the all-reduce of the next window, so all ranks stop together
    assert rank0.stop_now(True) is False and rank1.stop_now(True) is False


def test_steps_per_epoch_is_one_computation_for_config_loader_and_plan():
    rng = torch.Generator().manual_seed(0)
    for _ in range(20):
        n = int(torch.randint(8, 400, (1,), generator=rng))
        b = int(torch.randint(1, n + 1, (1,), generator=rng))
        cfg = RunConfig(dataset="digits", subset=n, batch_size=b)
        x = torch.zeros(n, 1, 8, 8, dtype=torch.uint8)
        y = torch.zeros(n, dtype=torch.long)
        loader = PlanDataLoader(x, y, DATASETS["digits"], b, seed=0, augment=False)
        plan = epoch_plan(n, b, seed=0, epoch=0, augment=False)
        assert cfg.steps_per_epoch() == cfg.steps_per_epoch(n) == steps_per_epoch(n, b) == len(loader) == plan.steps
        assert plan.steps * b <= n < (plan.steps + 1) * b  # full batches only, at most one short batch dropped


def test_a_sweep_error_is_a_config_error_with_the_same_fields():
    with pytest.raises(ConfigError) as e:  # callers that catch the lab's validation error catch both
        parse_values("0.1, abc", "lr", float)
    assert type(e.value) is SweepError and e.value.errors == ["lr: 'abc' is not a number"]
    assert str(e.value) == "lr: 'abc' is not a number"
    with pytest.raises(SweepError, match="unknown sweep field"):
        SweepSpec.from_dict({"base": {}, "params": {}, "nonsense": 1})
    assert not isinstance(ConfigError(["x"]), SweepError)
