"""AppTest of the training lab and compare pages, with real runs already in the store: monitoring,
traceback of a failed run, form validation, read-only mode, confined paths, and a real launch."""

import base64
import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from fakes import write_fake_cifar10
from streamlit.testing.v1 import AppTest

from sam_core.training import RunConfig, RunStore
from sam_core.training.worker import create, execute

ROOT = Path(__file__).resolve().parents[1]
CFG = dict(
    dataset="cifar10",
    model="lenet5",
    optimizer="ssam",
    hparams={"rho": 0.05},
    subset=96,
    batch_size=32,
    epochs=2,
    log_every=1,
    hessian_every=2,
    hessian_batch=16,
    final_top_k=2,
    eval_train_size=32,
    test_subset=32,
    download=False,
)


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("page")
    write_fake_cifar10(base / "data", n_train=128, n_test=32)
    mp = pytest.MonkeyPatch()
    mp.setenv("SAMLAB_RUNS_DIR", str(base / "runs"))
    mp.setenv("SAMLAB_DATA", str(base / "data"))
    mp.setenv("SAMLAB_OFFLINE", "1")
    mp.setenv("SAMLAB_MAX_RUNS", "2")
    mp.setenv("OMP_NUM_THREADS", "1")
    mp.delenv("SAMLAB_READ_ONLY", raising=False)
    store = RunStore(base / "runs")
    done = create(store, RunConfig(**CFG, data_dir=str(base / "data")), name="finished-ssam")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the shared 2-core machine: one thread is much faster than two fighting
    try:
        assert execute(store, done, max_concurrent=2) == "finished"  # trained here, in this process
    finally:
        torch.set_num_threads(threads)
    failed = create(store, RunConfig(**CFG), name="broken-run")
    store.update(failed, status="failed", message="RuntimeError: boom")
    store.update(failed, traceback="Traceback (most recent call last):\n  File x\nRuntimeError: boom")
    yield base, store, done, failed
    mp.undo()


def _page(path="pages/training.py") -> AppTest:
    at = AppTest.from_file(str(ROOT / path), default_timeout=60)
    return at


def test_page_shows_the_runs_and_their_curves(roots):
    _, store, done, failed = roots
    at = _page()
    at.session_state["tl_show"] = [done, failed]
    at.run()
    assert not at.exception
    table = at.dataframe[0].value
    assert done in table["id"].tolist() and failed in table["id"].tolist()
    assert set(table["status"]) >= {"finished", "failed"}
    charts = at.get("plotly_chart")
    assert len(charts) >= 6
    figs = [json.loads(c.proto.spec) for c in charts]
    titles = [f["layout"].get("title", {}).get("text", "") for f in figs]
    gamma = figs[[i for i, t in enumerate(titles) if t.startswith("γ<sub>t</sub>")][0]]
    assert gamma["data"][-1]["name"] == "finished-ssam"
    y = gamma["data"][-1]["y"]  # plotly ships arrays as base64 ('bdata') or as lists
    y = np.frombuffer(base64.b64decode(y["bdata"]), dtype=y["dtype"]) if isinstance(y, dict) else np.asarray(y)
    assert len(y) == 6 and np.all(np.isfinite(y)) and np.all(y > 0)  # 2 epochs × 3 steps
    eig = figs[titles.index("Top Hessian eigenvalue and the edges of stability")]
    assert {"finished-ssam · λ_max", "finished-ssam · SAM edge"} <= {t["name"] for t in eig["data"]}
    # each run's header says its status once: "finished 6 steps", not "finished — finished 6 steps"
    headers = {r: next(m.value for m in at.markdown if f"`{r}`" in m.value) for r in (done, failed)}
    assert headers[done].endswith(f"· {store.get(done).message}") and "finished —" not in headers[done]
    assert headers[failed].endswith("· failed — RuntimeError: boom")
    # the failed run's traceback is in an expander, the finished one offers a CSV download
    assert any("RuntimeError: boom" in c.value for c in at.code)
    assert len(at.get("download_button")) == 2
    labels = [b.label for b in at.button]
    # each action names the run it acts on; nothing is active, so there is no Stop
    assert f"Resume {failed}" in labels and f"Delete {done}" in labels and not any(x.startswith("Stop") for x in labels)


def test_form_rejects_bad_values_with_clear_messages(roots):
    _, store, *_ = roots
    n_before = len(store.list_runs())
    at = _page()
    at.query_params["model"] = "nosuchnet"  # a shared link with a model that does not exist
    at.run()
    at.number_input(key="tl_epochs").set_value(0)
    at.number_input(key="tl_subset").set_value(100)
    at.number_input(key="tl_bs").set_value(128)
    at.run()
    at.button(key="tl_launch").click().run()
    assert not at.exception
    msg = " ".join(e.value for e in at.error)
    assert "model: unknown model 'nosuchnet'" in msg
    assert "epochs must be an integer in [1, 100000], got 0" in msg
    assert "batch_size 128 is larger than the training set (100 examples, subset=100); use at most 100" in msg
    assert len(store.list_runs()) == n_before  # nothing was launched


def test_paths_are_confined_to_the_configured_roots(roots):
    at = _page()
    at.run()
    at.text_input(key="tl_runs_dir").set_value("../../etc").run()
    assert not at.exception
    assert any("must lie inside" in e.value for e in at.error)


def test_read_only_hides_launch_stop_delete(roots, monkeypatch):
    _, _, done, failed = roots
    monkeypatch.setenv("SAMLAB_READ_ONLY", "1")
    at = _page()
    at.session_state["tl_show"] = [done, failed]
    at.run()
    assert not at.exception
    labels = [b.label for b in at.button]
    assert not any(lab.startswith("Launch") or lab.split(" ")[0] in ("Stop", "Resume", "Delete") for lab in labels)
    assert any("Read-only" in i.value for i in at.info)
    assert len(at.get("download_button")) == 2  # reading and exporting stay possible


@pytest.mark.slow
def test_compare_variants_launches_workers_with_the_same_seed(roots):
    _, store, *_ = roots
    before = {r.id for r in store.list_runs()}
    at = _page()
    at.run()
    at.multiselect(key="tl_variants").set_value(["sgd", "ssam"])
    at.number_input(key="tl_subset").set_value(64)
    at.number_input(key="tl_bs").set_value(32)
    at.number_input(key="tl_seed").set_value(3)
    at.number_input(key="tl_hevery").set_value(1)
    at.number_input(key="tl_topk").set_value(0)
    at.number_input(key="tl_evaltr").set_value(32)
    at.number_input(key="tl_logk").set_value(1)
    at.checkbox(key="tl_density").uncheck()
    at.run()
    at.button(key="tl_launch").click().run()
    assert not at.exception, at.exception
    new = [r for r in store.list_runs() if r.id not in before]
    assert sorted(r.variant for r in new) == ["sgd", "ssam"]
    assert len({r.group for r in new}) == 1 and new[0].group.startswith("cmp-")
    assert all(r.config["seed"] == 3 and r.config["subset"] == 64 for r in new)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and any(store.get(r.id).active for r in new):
        time.sleep(0.2)
    finals = [store.get(r.id) for r in new]
    assert [f.status for f in finals] == ["finished", "finished"], [f.traceback for f in finals]
    # same data order and init: the first step's clean loss is identical for both variants
    l0 = [store.metrics(r.id, ["loss"]).loc[1, "loss"] for r in new]
    assert l0[0] == pytest.approx(l0[1], rel=1e-6)


def test_compare_page_overlays_runs(roots):
    _, _, done, _ = roots
    at = _page("pages/compare_runs.py")
    at.run()
    assert not at.exception
    at.multiselect(key="cr_runs_(any)").set_value([done]).run()
    assert not at.exception
    summary = at.dataframe[0].value
    assert summary["name"].tolist() == ["finished-ssam"] and summary["steps"].tolist() == [6]
    assert len(at.get("plotly_chart")) == 4


def test_stop_and_delete_buttons_act_on_the_store(roots):
    _, store, *_ = roots
    active = create(store, RunConfig(**CFG), name="waiting-run")
    store.register_worker(active)  # a live process (this one) owns it: it counts as queued, not dead
    gone = create(store, RunConfig(**CFG), name="to-delete")
    store.finish(gone, "stopped")
    at = _page()
    at.session_state["tl_show"] = [active, gone]
    at.run()
    assert not at.exception
    at.button(key=f"tl_stop_{active}").click().run()
    assert store.get(active).stop_requested
    assert at.button(key=f"tl_del_{gone}").disabled  # needs the confirmation first
    at.checkbox(key=f"tl_delsure_{gone}").check().run()
    at.button(key=f"tl_del_{gone}").click().run()
    assert not at.exception
    assert not store.exists(gone) and gone not in at.multiselect(key="tl_show").value
    store.finish(active, "stopped")


def test_epochs_are_capped_for_a_shared_server(roots, monkeypatch):
    _, store, *_ = roots
    monkeypatch.setenv("SAMLAB_MAX_EPOCHS", "3")
    n_before = len(store.list_runs())
    at = _page()
    at.run()
    at.number_input(key="tl_epochs").set_value(4)
    at.button(key="tl_launch").click().run()
    assert not at.exception
    assert "epochs must be at most 3 on this server (SAMLAB_MAX_EPOCHS), got 4" in " ".join(e.value for e in at.error)
    assert len(store.list_runs()) == n_before


def test_a_link_with_run_id_shows_that_run(roots):
    _, store, done, failed = roots
    at = _page()
    newest = store.list_runs()[0].id
    target = done if newest != done else failed  # not the run shown by default
    at.query_params["run"] = target
    at.run()
    assert not at.exception
    assert at.multiselect(key="tl_show").value == [target]


def test_runs_launched_together_stay_overlaid_after_a_reload(roots):
    """The launch writes its runs into the URL: a reload shows all of them (it showed only the newest run,
    possibly the queued one); without a link the newest launch group is shown, and each Stop/Delete names its run."""
    _, store, done, _ = roots
    a = create(store, RunConfig(**CFG), name="cmp-a", group="cmp-reload")
    b = create(store, RunConfig(**CFG), name="cmp-b", group="cmp-reload")
    for r in (a, b):
        store.finish(r, "stopped")
    try:
        at = _page()
        at.query_params["run"] = f"{done},{a}"
        at.run()
        assert not at.exception
        assert at.multiselect(key="tl_show").value == [done, a]
        at = _page()  # a fresh session without a link: the newest group, both of its runs
        at.run()
        assert sorted(at.multiselect(key="tl_show").value) == sorted([a, b])
        labels = [btn.label for btn in at.button]
        assert f"Delete {a}" in labels and f"Delete {b}" in labels and "Delete" not in labels
    finally:
        for r in (a, b):
            store.delete(r, force=True)


def test_stop_after_a_reload_stops_the_run_it_names(roots):
    """Two active runs launched together; a reload (a fresh session with the launch's link) shows both, and
    the Stop of the second stops that run and no other."""
    _, store, *_ = roots
    a = create(store, RunConfig(**CFG), name="live-a", group="cmp-stop")
    b = create(store, RunConfig(**CFG), name="live-b", group="cmp-stop")
    for r in (a, b):
        store.register_worker(r)  # owned by a live process (this one): active, queued
    try:
        at = _page()
        at.query_params["run"] = f"{a},{b}"
        at.run()
        assert not at.exception
        assert at.multiselect(key="tl_show").value == [a, b]
        stop_b = at.button(key=f"tl_stop_{b}")
        assert stop_b.label == f"Stop {b}"
        stop_b.click().run()
        assert store.get(b).stop_requested and not store.get(a).stop_requested
    finally:
        for r in (a, b):
            store.finish(r, "stopped")
            store.delete(r, force=True)


def test_the_launch_form_stays_open_while_it_is_filled_in(tmp_path, monkeypatch):
    """An empty runs folder opens the form; a change in it reran the page with the expander made anew (its
    ``expanded`` is part of Streamlit's element id), and the form folded under the person filling it."""
    monkeypatch.setenv("SAMLAB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("SAMLAB_DATA", str(tmp_path / "data"))
    at = _page()
    at.run()
    assert not at.exception
    assert at.session_state["tl_form"] is True
    at.number_input(key="tl_epochs").set_value(2).run()
    assert at.session_state["tl_form"] is True
