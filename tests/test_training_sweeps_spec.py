"""Sweeps without training: expanding a spec into trials (grid, random, merging, validation), the
store's sweep records (stop, dead driver, delete), the result table and the pure plot builders."""

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from sam_core.plots import training_sweeps as splots
from sam_core.training import RunStore
from sam_core.training.sweeps import SweepError, SweepSpec, create, parse_values, sweep_frame

BASE = {"dataset": "cifar10", "model": "lenet5", "epochs": 1, "batch_size": 32, "hparams": {"rho": 0.07}}


def test_grid_is_the_product_and_hyperparameters_apply_only_to_their_variants():
    spec = SweepSpec(
        base=BASE,
        params={"optimizer": ["sgd", "sam", "unified_sam"], "rho": [0.02, 0.05], "lam": [0.5], "lr": [0.1, 0.2]},
    )
    trials = spec.trials()
    # sgd has neither rho nor lam: one trial per lr; sam: rho × lr; unified_sam: rho × lam × lr
    assert [t.params for t in trials] == [
        {"optimizer": "sgd", "lr": 0.1},
        {"optimizer": "sgd", "lr": 0.2},
        {"optimizer": "sam", "rho": 0.02, "lr": 0.1},
        {"optimizer": "sam", "rho": 0.02, "lr": 0.2},
        {"optimizer": "sam", "rho": 0.05, "lr": 0.1},
        {"optimizer": "sam", "rho": 0.05, "lr": 0.2},
        {"optimizer": "unified_sam", "rho": 0.02, "lam": 0.5, "lr": 0.1},
        {"optimizer": "unified_sam", "rho": 0.02, "lam": 0.5, "lr": 0.2},
        {"optimizer": "unified_sam", "rho": 0.05, "lam": 0.5, "lr": 0.1},
        {"optimizer": "unified_sam", "rho": 0.05, "lam": 0.5, "lr": 0.2},
    ]
    assert [t.index for t in trials] == list(range(10))
    assert trials[0].config["hparams"] == {}  # the base rho does not apply to sgd
    assert trials[2].config["hparams"] == {"rho": 0.02} and trials[2].config["lr"] == 0.1
    assert trials[6].config["hparams"] == {"rho": 0.02, "lam": 0.5}
    assert all(t.config["model"] == "lenet5" and t.config["batch_size"] == 32 for t in trials)
    # the alias "variant" and a scalar (fixed) value
    alias = SweepSpec.from_dict({"base": BASE, "params": {"variant": ["sam"], "rho": 0.03}}).trials()
    assert [t.config["optimizer"] for t in alias] == ["sam"] and alias[0].config["hparams"] == {"rho": 0.03}


def test_random_search_is_seeded_and_within_its_ranges():
    params = {
        "lr": {"log_uniform": [1e-3, 1e-1]},
        "rho": {"uniform": [0.01, 0.2]},
        "seed": {"int_uniform": [0, 3]},
        "optimizer": ["sam", "ssam"],
    }
    a = SweepSpec(base=BASE, params=params, search="random", num_samples=12, seed=5, max_trials=12).trials()
    b = SweepSpec(base=BASE, params=params, search="random", num_samples=12, seed=5, max_trials=12).trials()
    c = SweepSpec(base=BASE, params=params, search="random", num_samples=12, seed=6, max_trials=12).trials()
    assert [t.params for t in a] == [t.params for t in b] != [t.params for t in c]
    assert len(a) == 12
    for t in a:
        p = t.params
        assert 1e-3 <= p["lr"] <= 1e-1 and 0.01 <= p["rho"] <= 0.2 and p["seed"] in (0, 1, 2, 3)
        assert p["optimizer"] in ("sam", "ssam") and float(f"{p['lr']:.4g}") == p["lr"]
    # log-uniform: about as many draws below the geometric midpoint as above it
    many = SweepSpec(
        base=BASE, params={"lr": {"log_uniform": [1e-4, 1.0]}}, search="random", num_samples=400, max_trials=400
    ).combinations()
    below = sum(x["lr"] < 1e-2 for x in many)
    assert 150 < below < 250


@pytest.mark.parametrize(
    "spec, needle",
    [
        ({"params": {"colour": [1]}}, "'colour' cannot be swept"),
        ({"params": {"lr": []}}, "params.lr: the list of values is empty"),
        ({"params": {"lr": {"uniform": [0, 1]}}}, "grid search needs a list of values"),
        ({"params": {"lr": {"log_uniform": [0, 1]}}, "search": "random"}, "log_uniform needs 0 < low"),
        ({"params": {"lr": {"normal": [0, 1]}}, "search": "random"}, "a distribution is one of"),
        ({"params": {"rho": [0.05, -1.0]}}, "trial 1 (ρ=-1)"),
        ({"params": {"lr": [0.1, 0.2, 0.3]}, "max_trials": 2}, "the sweep has 3 trials; at most 2 are allowed"),
        ({"params": {"lam": [0.5]}, "base": dict(BASE, optimizer="sam")}, "apply to none of the variants"),
        ({"params": {"lr": [0.1]}, "executor": "slurm"}, "executor must be one of"),
        ({"params": {"lr": [0.1]}, "ray": {"gpus_per_trial": -1}}, "ray.gpus_per_trial must be a number in [0, 64]"),
        ({"params": {"lr": [0.1]}, "ray": {"nodes": 3}}, "ray: unknown option(s) ['nodes']"),
        ({"params": {"lr": [0.1]}, "base": {"colour": 1}}, "base: unknown RunConfig field(s) ['colour']"),
    ],
)
def test_invalid_sweeps_name_the_field(spec, needle):
    d = {"base": BASE, **spec}
    with pytest.raises(SweepError) as e:
        SweepSpec.from_dict(d).trials()
    assert needle in str(e.value)


def test_spec_file_and_page_lists(tmp_path):
    with pytest.raises(SweepError, match="unknown sweep field"):
        SweepSpec.from_dict({"base": BASE, "params": {"lr": [1]}, "grid": {}})
    bad = tmp_path / "s.json"
    bad.write_text("{not json")
    with pytest.raises(SweepError, match="cannot read a JSON object"):
        SweepSpec.from_json_file(bad)
    assert parse_values("0.01, 0.05 0.1;0.05", "lr") == [0.01, 0.05, 0.1]
    assert parse_values("1 2", "seed", int) == [1, 2]
    with pytest.raises(SweepError, match="lr: 'abc' is not a number"):
        parse_values("0.1, abc", "lr")
    with pytest.raises(SweepError, match="seed: '1.5' is not an integer"):
        parse_values("1.5", "seed", int)
    with pytest.raises(SweepError, match="lr: 'inf' is not a finite number"):
        parse_values("inf", "lr")


# ------------------------------------------------------------------------------------------- store
def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_store_records_trials_and_stops_and_reconciles(tmp_path):
    store = RunStore(tmp_path / "runs")
    spec = SweepSpec(base=BASE, params={"rho": [0.01, 0.02, 0.03]}, name="three")
    sid = create(store, spec)
    info = store.get_sweep(sid)
    assert info.status == "queued" and info.n_trials == 3 and info.spec["params"] == {"rho": [0.01, 0.02, 0.03]}
    trials = store.sweep_trials(sid)
    assert [t.status for t in trials] == ["pending"] * 3 and trials[1].params == {"rho": 0.02}
    # trial 0 gets a run; a stop of a sweep whose driver never started cancels the rest
    rid = store.create_run({"x": 1}, group=sid)
    assert store.start_trial(sid, 0, rid)
    assert not store.start_trial(sid, 0, rid)  # only pending trials start
    assert store.sweep_trials(sid)[0].status == "queued"
    store.request_sweep_stop(sid)
    assert [t.status for t in store.sweep_trials(sid)] == ["queued", "cancelled", "cancelled"]
    assert store.get(rid).stop_requested

    # a sweep whose driver process died is marked failed and its pending trials cancelled
    sid2 = create(store, spec)
    store.update_sweep(sid2, status="running")
    store.register_sweep_driver(sid2, _dead_pid())
    assert [s.id for s in store.list_sweeps() if s.status == "failed"] == [sid2]
    assert "driver process" in store.get_sweep(sid2).message
    assert {t.status for t in store.sweep_trials(sid2)} == {"cancelled"}

    # deleting a run marks its trial; deleting a sweep deletes its runs
    store.finish(rid, "stopped")
    store.update_sweep(sid, status="stopped")
    store.delete_sweep(sid)
    assert not store.exists(rid) and sid not in [s.id for s in store.list_sweeps()]
    with pytest.raises(KeyError):
        store.get_sweep(sid)
    with pytest.raises(ValueError, match="sweep id must look like"):
        store.get_sweep("../etc")


def test_sweep_frame_reads_each_runs_final_numbers(tmp_path):
    store = RunStore(tmp_path / "runs")
    sid = create(store, SweepSpec(base=BASE, params={"optimizer": ["sgd", "sam"], "rho": [0.05]}))
    r0 = store.create_run({}, group=sid)
    store.start_trial(sid, 0, r0)
    store.log_metrics(
        r0,
        [
            (1, "gamma", 1.0),
            (2, "gamma", 3.0),
            (3, "gamma", float("nan")),
            (2, "test_acc", 0.4),
            (4, "test_acc", 0.6),
            (2, "top_eig", 5.0),
            (4, "top_eig", 7.0),
        ],
    )
    r1 = store.create_run({}, group=sid)
    store.start_trial(sid, 1, r1)
    store.log_metrics(r1, [(4, "test_acc", 0.7), (4, "top_eig", 9.0)])
    store.put_artifact(r1, "top_eigenvalues", {"values": [11.0, 2.0]})
    store.put_artifact(r1, "diverged_step", 3)
    df = sweep_frame(store, sid)
    assert df.attrs["params"] == ["optimizer", "rho"]
    assert df["optimizer"].tolist() == ["sgd", "sam"] and df["rho"].isna().tolist() == [True, False]
    assert df["test_acc"].tolist() == [0.6, 0.7]
    assert df["top_eig"].tolist() == [7.0, 11.0]  # the end-of-run spectrum wins over the tracked value
    assert df.loc[0, "gamma_mean"] == 2.0 and df.loc[0, "gamma_min"] == 1.0 and df.loc[0, "gamma_max"] == 3.0
    assert df.loc[0, "gamma_std"] == pytest.approx(1.0) and df.loc[0, "gamma_last"] == 3.0
    assert math.isnan(df.loc[1, "gamma_mean"]) and df.loc[1, "diverged_step"] == 3
    assert df["run_id"].tolist() == [r0, r1]


# ------------------------------------------------------------------------------------------- plots
def _frame():
    rows = []
    rng = np.random.default_rng(0)
    for opt in ("sam", "ssam"):
        for lr in (0.1, 0.01):
            for rho in (0.05, 0.2, 0.02):
                for seed in (0, 1):
                    rows.append(
                        dict(
                            optimizer=opt,
                            lr=lr,
                            rho=rho,
                            seed=seed,
                            run_id=f"{opt}-{lr}-{rho}-{seed}",
                            test_acc=float(rng.uniform()),
                            top_eig=float(rng.uniform(1, 100)),
                        )
                    )
    rows.append(dict(optimizer="sgd", lr=0.1, rho=None, seed=0, run_id="sgd", test_acc=0.5, top_eig=math.nan))
    return pd.DataFrame(rows)


def test_heatmap_cells_are_the_group_aggregates():
    df = _frame()
    fig = splots.heatmap_figure(df, "rho", "lr", "test_acc", agg="mean", facet="optimizer")
    assert [t.type for t in fig.data] == ["heatmap"] * 3
    assert list(fig.data[0].x) == ["0.02", "0.05", "0.2"] and list(fig.data[0].y) == ["0.01", "0.1"]
    want = df[df.optimizer == "sam"].groupby(["lr", "rho"])["test_acc"].mean()
    z = np.asarray(fig.data[0].z)
    for i, lr in enumerate((0.01, 0.1)):
        for j, rho in enumerate((0.02, 0.05, 0.2)):
            assert z[i, j] == pytest.approx(want[(lr, rho)])
    ids = fig.data[0].customdata
    assert ids[0][0] == "sam-0.01-0.02-0 sam-0.01-0.02-1"
    # panels in order sam, sgd, ssam; in sgd's, rho does not apply ("—"): one cell
    assert [a.text for a in fig.layout.annotations] == ["optimizer = sam", "optimizer = sgd", "optimizer = ssam"]
    assert list(fig.data[1].x) == ["—"] and np.asarray(fig.data[1].z).tolist() == [[0.5]]
    mx = np.asarray(splots.heatmap_figure(df[df.optimizer == "ssam"], "rho", "lr", "top_eig", agg="max").data[0].z)
    assert mx[1, 2] == pytest.approx(df[(df.optimizer == "ssam") & (df.lr == 0.1) & (df.rho == 0.2)].top_eig.max())
    with pytest.raises(ValueError, match="two different parameters"):
        splots.heatmap_figure(df, "rho", "rho", "test_acc")
    with pytest.raises(ValueError, match="unknown column"):
        splots.heatmap_figure(df, "rho", "lam", "test_acc")


def test_parallel_coordinates_and_line():
    df = _frame()
    fig = splots.parallel_figure(df, ["optimizer", "lr", "rho"], ["test_acc", "top_eig"], "top_eig")
    dims = fig.data[0].dimensions
    assert [d.label for d in dims] == ["optimizer", "lr", "rho", "test_acc", "top_eig"]
    assert len(dims[3].values) == len(df) - 1  # the sgd trial has no top_eig: left out, said in the title
    assert "1 trial(s) without top_eig left out" in fig.layout.title.text
    assert list(dims[0].ticktext) == ["sam", "ssam"]
    # rho spans 10×: linear; lr spans 10× too — both linear (log only from 20×)
    assert dims[2].label == "rho"
    wide = pd.DataFrame({"lr": [1e-3, 1e-2, 1e-1], "run_id": ["a", "b", "c"], "test_acc": [0.1, 0.2, 0.3]})
    d = splots.parallel_figure(wide, ["lr"], ["test_acc"], "test_acc").data[0].dimensions[0]
    assert d.label == "lr (log)" and list(d.values) == pytest.approx([-3, -2, -1])
    assert list(d.ticktext) == ["0.001", "0.01", "0.1"]
    line = splots.metric_line_figure(df, "rho", "test_acc", group="optimizer")
    assert [t.name for t in line.data] == ["sam", "sgd", "ssam"]
    assert json.loads(line.to_json())["layout"]["xaxis"]["categoryarray"] == ["0.02", "0.05", "0.2", "—"]
    assert splots.ordered_levels([0.2, "b", None, 0.02, "a", 1]) == ["0.02", "0.2", "1", "a", "b", "—"]
