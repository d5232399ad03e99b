"""A sweep's specification: one training config, the swept parameters, grid or random search.

    {
      "name": "lr × rho",
      "base": {"dataset": "cifar10", "model": "resnet20", "epochs": 10, "batch_size": 128},
      "search": "grid",
      "params": {"optimizer": ["sam", "ssam"], "lr": [0.02, 0.05, 0.1], "rho": [0.02, 0.05, 0.1]},
      "max_trials": 64
    }

`base` holds `RunConfig` fields. A swept name is a RunConfig field (lr, momentum, weight_decay,
batch_size, epochs, seed, model, optimizer, …; "variant" means optimizer) or a variant
hyperparameter from the registry (rho, lam, stable, …). A hyperparameter applies only to the
variants that have it: with optimizer ∈ {sgd, sam} × rho ∈ {0.02, 0.05}, sgd runs once, not twice.

Grid search: every value of `params` is a list (a scalar means fixed), the trials are the Cartesian
product in the order given. Random search (`"search": "random"`, `num_samples`, `seed`): a value is a
list (uniform choice), {"uniform": [lo, hi]}, {"log_uniform": [lo, hi]} or {"int_uniform": [lo, hi]}
(inclusive); drawn numbers keep 4 significant digits. Identical trials are merged; every trial's
config is validated (`RunConfig.errors`) before anything runs, and at most `max_trials` are allowed.

Execution (`executor`): "local" — the run queue of this machine (`parallel` trials at once, default
SAMLAB_MAX_RUNS); "ray" — Ray Tune trials, with `ray` options address, cpus_per_trial,
gpus_per_trial (fractions allowed) and asha (early stopping on `asha_metric`, per epoch).
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from sam_core.training.config import ConfigError

SEARCHES = ("grid", "random")
EXECUTORS = ("local", "ray")
MAX_TRIALS = 1000  # the most any sweep may hold (a page caps lower)
NOT_SWEPT = ("hparams", "name", "group")  # RunConfig fields that cannot be swept
DISTRIBUTIONS = ("uniform", "log_uniform", "int_uniform")
RAY_KEYS = {
    "address": None,
    "cpus_per_trial": 1.0,
    "gpus_per_trial": 0.0,
    "asha": False,
    "asha_metric": "test_acc",
    "asha_mode": "max",
    "asha_grace": 1,
    "asha_reduction": 2.0,
}


class SweepError(ConfigError):
    """An invalid sweep; `.errors` holds one sentence per problem (each names its field)."""


@dataclass
class Trial:
    index: int
    params: dict[str, Any]  # the swept values that apply to this trial
    config: dict[str, Any]  # its full RunConfig (as a dict)

    def label(self) -> str:
        return " ".join(f"{_short(k)}={_fmt(v)}" for k, v in self.params.items())


def _short(name: str) -> str:
    return {"rho": "ρ", "lam": "λ", "lr": "η", "optimizer": "variant"}.get(name, name)


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def run_fields() -> list[str]:
    from sam_core.training.config import RunConfig

    return [f.name for f in fields(RunConfig) if f.name not in NOT_SWEPT]


def hparam_names() -> list[str]:
    import sam_core

    names: list[str] = []
    for spec in sam_core.VARIANTS.values():
        for n, h in spec.hparams.items():
            if h.kind != "tensor" and n not in names:
                names.append(n)
    return names


@dataclass
class SweepSpec:
    base: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    search: str = "grid"
    num_samples: int = 8
    seed: int = 0
    max_trials: int = 64
    name: str = ""
    executor: str = "local"
    parallel: int | None = None
    ray: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------------------ (de)serialisation
    @classmethod
    def from_dict(cls, d: Any) -> SweepSpec:
        if not isinstance(d, dict):
            raise SweepError(["a sweep must be a JSON object with base, params, search, …"])
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise SweepError([f"unknown sweep field(s) {unknown}; allowed: {sorted(known)}"])
        d = dict(d)
        if "params" in d and isinstance(d["params"], dict) and "variant" in d["params"]:
            p = dict(d["params"])
            if "optimizer" in p:
                raise SweepError(["params: give 'optimizer' or its alias 'variant', not both"])
            p["optimizer"] = p.pop("variant")
            d["params"] = p
        return cls(**d)

    @classmethod
    def from_json_file(cls, path: str | Path) -> SweepSpec:
        try:
            d = json.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SweepError([f"--config {path}: cannot read a JSON object ({exc})"]) from None
        except RecursionError:
            raise SweepError([f"--config {path}: nested too deeply to be a sweep"]) from None
        return cls.from_dict(d)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def ray_options(self) -> dict[str, Any]:
        return {**RAY_KEYS, **(self.ray or {})}

    # ------------------------------------------------------------------------------ validation
    def errors(self) -> list[str]:
        err: list[str] = []
        if not isinstance(self.base, dict):
            err.append("base must be an object of RunConfig fields")
        if not isinstance(self.params, dict) or not self.params:
            err.append("params must be a non-empty object: name → list of values (or a distribution for random search)")
        if self.search not in SEARCHES:
            err.append(f"search must be one of {list(SEARCHES)}, got {self.search!r}")
        if self.executor not in EXECUTORS:
            err.append(f"executor must be one of {list(EXECUTORS)}, got {self.executor!r}")
        if not _is_int(self.max_trials) or not 1 <= self.max_trials <= MAX_TRIALS:
            err.append(f"max_trials must be an integer in [1, {MAX_TRIALS}], got {self.max_trials!r}")
        if self.search == "random" and (not _is_int(self.num_samples) or not 1 <= self.num_samples <= MAX_TRIALS):
            err.append(f"num_samples must be an integer in [1, {MAX_TRIALS}], got {self.num_samples!r}")
        if not _is_int(self.seed) or self.seed < 0:
            err.append(f"seed must be an integer ≥ 0, got {self.seed!r}")
        if self.parallel is not None and (not _is_int(self.parallel) or not 1 <= self.parallel <= 64):
            err.append(f"parallel must be an integer in [1, 64] (trials at once), got {self.parallel!r}")
        if not isinstance(self.name, str):
            err.append("name must be a string")
        err += self._ray_errors()
        if isinstance(self.params, dict) and self.search in SEARCHES:
            allowed = run_fields() + hparam_names()
            for k, v in self.params.items():
                if k not in allowed:
                    err.append(
                        f"params: {k!r} cannot be swept; choose RunConfig fields or variant hyperparameters: {allowed}"
                    )
                    continue
                err += _value_errors(k, v, self.search)
        return err

    def _ray_errors(self) -> list[str]:
        if not isinstance(self.ray, dict):
            return ["ray must be an object of Ray options"]
        err = []
        bad = sorted(set(self.ray) - set(RAY_KEYS))
        if bad:
            err.append(f"ray: unknown option(s) {bad}; allowed: {sorted(RAY_KEYS)}")
        o = self.ray_options()
        if not _is_num(o["cpus_per_trial"]) or not 0 < o["cpus_per_trial"] <= 1024:
            err.append(f"ray.cpus_per_trial must be a number in (0, 1024], got {o['cpus_per_trial']!r}")
        if not _is_num(o["gpus_per_trial"]) or not 0 <= o["gpus_per_trial"] <= 64:
            err.append(
                f"ray.gpus_per_trial must be a number in [0, 64] (fractions share a GPU), got {o['gpus_per_trial']!r}"
            )
        if o["address"] is not None and not isinstance(o["address"], str):
            err.append("ray.address must be a string such as 'auto' or 'ray://head:10001'")
        if not isinstance(o["asha"], bool):
            err.append("ray.asha must be true or false")
        if o["asha_mode"] not in ("max", "min"):
            err.append(f"ray.asha_mode must be max or min, got {o['asha_mode']!r}")
        if not isinstance(o["asha_metric"], str) or not o["asha_metric"]:
            err.append("ray.asha_metric must be a metric name logged per epoch, e.g. test_acc")
        if not _is_int(o["asha_grace"]) or o["asha_grace"] < 1:
            err.append(f"ray.asha_grace must be an integer ≥ 1 (epochs), got {o['asha_grace']!r}")
        if not _is_num(o["asha_reduction"]) or o["asha_reduction"] <= 1:
            err.append(f"ray.asha_reduction must be a number > 1, got {o['asha_reduction']!r}")
        return err

    def validate(self) -> SweepSpec:
        err = self.errors()
        if err:
            raise SweepError(err)
        return self

    # ------------------------------------------------------------------------------ trials
    def combinations(self) -> list[dict[str, Any]]:
        """The swept values of each trial before variant filtering and merging."""
        items = list(self.params.items())
        if self.search == "grid":
            lists = [v if isinstance(v, list) else [v] for _, v in items]
            n = math.prod(len(x) for x in lists)
            if n > MAX_TRIALS * 10:
                raise SweepError(
                    [f"the grid has {n} combinations; at most {self.max_trials} trials (max_trials) are allowed"]
                )
            return [dict(zip([k for k, _ in items], combo)) for combo in itertools.product(*lists)]
        rng = np.random.default_rng(self.seed)
        out = []
        for _ in range(self.num_samples):
            out.append({k: _draw(v, rng) for k, v in items})
        return out

    def trials(self) -> list[Trial]:
        """Validated, merged trials; raises SweepError naming every problem."""
        import sam_core
        from sam_core.training.config import RunConfig

        self.validate()
        base = dict(self.base)
        rf = set(run_fields())
        bad = sorted(set(base) - {f.name for f in fields(RunConfig)})
        if bad:
            raise SweepError([f"base: unknown RunConfig field(s) {bad}"])
        trials: list[Trial] = []
        seen: set[str] = set()
        errors: list[str] = []
        used: set[str] = set()
        for combo in self.combinations():
            d = json.loads(json.dumps(base))  # a deep copy
            variant = combo.get("optimizer", d.get("optimizer", RunConfig.optimizer))
            spec = sam_core.VARIANTS.get(variant) if isinstance(variant, str) else None
            hp = dict(d.get("hparams") or {})
            applied: dict[str, Any] = {}
            for k, v in combo.items():
                if k in rf:
                    d[k] = v
                    applied[k] = v
                elif spec is None or k in spec.hparams:
                    hp[k] = v
                    applied[k] = v
            if spec is not None:  # base hyperparameters of other variants do not apply either
                hp = {k: v for k, v in hp.items() if k in spec.hparams}
            d["hparams"] = hp
            used.update(applied)
            key = json.dumps(d, sort_keys=True)
            if key in seen:
                continue
            seen.add(key)
            t = Trial(len(trials), applied, d)
            try:
                errs = RunConfig.from_dict(d).errors()
            except (ConfigError, TypeError) as exc:
                errs = [str(exc)]
            errors += [f"trial {t.index} ({t.label()}): {e}" for e in errs]
            trials.append(t)
        unused = [k for k in self.params if k not in used]
        if unused:
            errors.insert(
                0,
                f"params: {unused} apply to none of the variants swept; a hyperparameter counts only "
                f"for the variants that have it (see sam_core.VARIANTS)",
            )
        if errors:
            more = f" … and {len(errors) - 8} more" if len(errors) > 8 else ""
            raise SweepError(errors[:8] + ([more] if more else []))
        if len(trials) > self.max_trials:
            raise SweepError(
                [
                    f"the sweep has {len(trials)} trials; at most {self.max_trials} are allowed "
                    f"(max_trials); narrow the grid or raise max_trials (≤ {MAX_TRIALS})"
                ]
            )
        return trials


# ------------------------------------------------------------------------------------------- values
def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str)) and (not isinstance(v, float) or math.isfinite(v))


def _value_errors(name: str, v: Any, search: str) -> list[str]:
    if isinstance(v, list):
        if not v:
            return [f"params.{name}: the list of values is empty"]
        if not all(_scalar(x) for x in v):
            return [f"params.{name}: values must be numbers, strings, true/false or null, got {v!r}"]
        return []
    if isinstance(v, dict):
        if search == "grid":
            return [
                f'params.{name}: grid search needs a list of values, got a distribution {v!r} (use "search": "random")'
            ]
        if len(v) != 1 or next(iter(v)) not in DISTRIBUTIONS:
            return [f"params.{name}: a distribution is one of {list(DISTRIBUTIONS)} → [low, high], got {v!r}"]
        kind, rng = next(iter(v.items()))
        if not (isinstance(rng, list) and len(rng) == 2 and all(_is_num(x) for x in rng) and rng[0] <= rng[1]):
            return [f"params.{name}: {kind} needs [low, high] with low ≤ high, got {rng!r}"]
        if kind == "log_uniform" and rng[0] <= 0:
            return [f"params.{name}: log_uniform needs 0 < low ≤ high, got {rng!r}"]
        if kind == "int_uniform" and not all(float(x).is_integer() for x in rng):
            return [f"params.{name}: int_uniform needs integer bounds, got {rng!r}"]
        return []
    if not _scalar(v):
        return [
            f"params.{name}: expected a list of values{' or a distribution' if search == 'random' else ''}, got {v!r}"
        ]
    return []


def _draw(v: Any, rng: np.random.Generator) -> Any:
    if isinstance(v, list):
        return v[int(rng.integers(len(v)))]
    if isinstance(v, dict):
        kind, (lo, hi) = next(iter(v.items()))
        if kind == "int_uniform":
            return int(rng.integers(int(lo), int(hi) + 1))
        x = math.exp(rng.uniform(math.log(lo), math.log(hi))) if kind == "log_uniform" else rng.uniform(lo, hi)
        return float(f"{x:.4g}")
    return v


def parse_values(text: str, name: str, kind: type = float, max_count: int = MAX_TRIALS) -> list:
    """'0.01, 0.05 0.1' → [0.01, 0.05, 0.1] (page forms; never eval). Raises SweepError naming `name`.

    At most `max_count` values (no sweep holds more trials), counted before anything is split or converted."""
    text = str(text)
    n = sum(text.count(c) for c in ", ;\t\n") + 1  # an upper bound of the number of values, without splitting
    if n > max_count and len(text.replace(",", " ").replace(";", " ").split(None, max_count + 1)) > max_count:
        raise SweepError([f"{name}: at most {max_count} values, got more than {max_count}"])
    parts = [p for p in text.replace(",", " ").replace(";", " ").split() if p]
    if not parts:
        raise SweepError([f"{name}: give at least one value"])
    out = []
    for p in parts:
        try:
            x = kind(p)
        except (ValueError, OverflowError):
            shown = p if len(p) <= 24 else f"{p[:12]}…({len(p)} characters)"
            raise SweepError([f"{name}: {shown!r} is not a{'n integer' if kind is int else ' number'}"]) from None
        if isinstance(x, float) and not math.isfinite(x):
            raise SweepError([f"{name}: {p!r} is not a finite number"])
        out.append(x)
    return list(dict.fromkeys(out))
