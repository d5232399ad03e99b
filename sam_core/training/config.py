"""A training run's configuration: one dataclass, validated in one place (CLI, page and worker alike).

`RunConfig.errors()` lists every problem as a sentence naming the field and its allowed range;
`validate()` raises `ConfigError` with all of them. Variant hyperparameters (ρ, λ, …) live in
`hparams` and are checked by `sam_core.resolve_hparams`, never re-described here.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from sam_core.training.data import DATASETS, steps_per_epoch
from sam_core.training.models import MODELS

BASES = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "step")
LOSSES = ("ce", "mse")
LOADERS = ("auto", "resident", "dataloader")

# Default Hessian tracking: an estimate every HESSIAN_EVERY steps on HESSIAN_BATCH fixed examples,
# at most HESSIAN_ITERS Lanczos iterations warm-started from the previous eigenvector
# (benchmarks/bench_training.py measures the overhead of this default).
HESSIAN_EVERY = 100
HESSIAN_BATCH = 128
HESSIAN_ITERS = 20

# A dataset's suggested launch settings where RunConfig's defaults (sized for CIFAR) do not fit.
# digits on a 2-core CPU: the small CNN (38k parameters), 22 steps of 64 per epoch; 5 epochs of SAM,
# λ_max every 10 steps (so its curve has points) and the final spectrum take ~2.5 s and reach ~96 % test
# accuracy (the MLP: the same accuracy, ~6 s: its 300k parameters make every Hessian estimate dearer).
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    "digits": {"model": "cnn8", "batch_size": 64, "lr": 0.05, "epochs": 5, "hessian_every": 10},
}


class ConfigError(ValueError):
    """One or more invalid fields; `.errors` holds one message per problem (each names its field).

    The training lab's one validation error: `sweeps.SweepError` (an invalid sweep) is a subclass."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        super().__init__("; ".join(self.errors))


@dataclass
class RunConfig:
    # data
    dataset: str = "cifar10"
    data_dir: str | None = None  # None: settings.data_dir (SAMLAB_DATA)
    download: bool = True
    subset: int | None = None  # training examples used (None: all)
    test_subset: int | None = None  # test examples used (None: all)
    label_noise: float = 0.0  # symmetric label noise rate
    augment: bool | None = None  # None: flip+crop on CIFAR, nothing on digits
    seed: int = 0
    # model and optimizer
    model: str = "lenet5"
    optimizer: str = "sam"  # a variant of sam_core.VARIANTS
    hparams: dict[str, Any] = field(default_factory=dict)  # the variant's own (rho, lam, stable, …)
    base: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    lr_schedule: str = "constant"
    loss: str = "ce"
    label_smoothing: float = 0.0
    epochs: int = 1
    batch_size: int = 128
    # measurements
    log_every: int = 10  # k: per-step metrics are averaged over k steps and written every k steps
    hessian_every: int = HESSIAN_EVERY  # m: top eigenvalue every m steps (0: off)
    hessian_batch: int = HESSIAN_BATCH
    hessian_iters: int = HESSIAN_ITERS
    hutchinson: int = 0  # Hutchinson probes per Hessian estimate (0: no trace)
    final_top_k: int = 5  # top-k eigenvalues at the end (0: off)
    final_density: bool = True  # spectral density (SLQ) at the end
    stability: bool = False  # uniform-stability twin run (one training example replaced)
    eval_train_size: int = 5000  # training examples evaluated (eval mode, no augmentation) per epoch
    # execution
    device: str = "auto"
    amp: bool = True  # bf16 autocast on CUDA (ignored on CPU)
    channels_last: bool = True  # on CUDA only
    loader: str = "auto"  # auto: resident on CUDA, DataLoader on CPU
    num_workers: int = 0
    checkpoint_minutes: float = 10.0  # also at every epoch end and on stop
    poll_seconds: float = 1.0  # how often the worker reads the stop flag and writes its heartbeat (0: every step)
    sync_perturbation: bool = False  # torchrun only: all-reduce the ascent gradient (global-batch SAM)
    name: str = ""
    group: str = ""  # runs launched together by "compare variants"

    # ------------------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError([f"unknown field(s) {unknown}; allowed: {sorted(known)}"])
        return cls(**d)

    @classmethod
    def from_json_file(cls, path: str | Path) -> RunConfig:
        try:
            d = json.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError([f"--config {path}: cannot read a JSON object ({exc})"]) from None
        except RecursionError:
            raise ConfigError([f"--config {path}: nested too deeply to be a run configuration"]) from None
        if not isinstance(d, dict):
            raise ConfigError([f"--config {path}: expected a JSON object of fields"])
        return cls.from_dict(d)

    # ------------------------------------------------------------------------------ validation
    def train_size(self) -> int:
        """The nominal number of training examples (the worker re-checks against the files it reads)."""
        n = DATASETS[self.dataset].n_train
        return min(n, self.subset) if self.subset else n

    def steps_per_epoch(self, n_train: int | None = None) -> int:
        """Steps of an epoch over `n_train` examples (default: the nominal `train_size()`): full batches only."""
        return steps_per_epoch(self.train_size() if n_train is None else n_train, self.batch_size)

    def resolved_hparams(self) -> dict[str, Any]:
        import sam_core

        return sam_core.resolve_hparams(self.optimizer, **self.hparams)

    def errors(self) -> list[str]:
        err: list[str] = []
        # types first (a config file may hold anything): a field of the wrong type is reported, and the
        # checks below that would trip over it (membership of an unhashable list, …) are skipped
        text_fields = (
            "dataset",
            "model",
            "optimizer",
            "base",
            "lr_schedule",
            "loss",
            "loader",
            "device",
            "name",
            "group",
        )
        bad_type = set()
        for name in text_fields:
            v = getattr(self, name)
            if not isinstance(v, str):
                err.append(f"{name} must be a string, got {_short(v)}")
                bad_type.add(name)
        if self.data_dir is not None and not isinstance(self.data_dir, str):
            err.append(f"data_dir must be a folder name (a string) or null, got {_short(self.data_dir)}")
        for name in ("download", "nesterov", "final_density", "stability", "amp", "channels_last"):
            if not isinstance(getattr(self, name), bool):
                err.append(f"{name} must be true or false, got {_short(getattr(self, name))}")
                bad_type.add(name)
        if self.augment is not None and not isinstance(self.augment, bool):
            err.append(f"augment must be true, false or null, got {_short(self.augment)}")
        if not isinstance(self.hparams, dict) or not all(
            isinstance(k, str) and (v is None or isinstance(v, (bool, int, float, str)))
            for k, v in self.hparams.items()
        ):
            err.append(
                f"hparams must map hyperparameter names to numbers, strings or booleans, got {_short(self.hparams)}"
            )
            bad_type.add("hparams")
        if bad_type & {"dataset", "model", "optimizer", "hparams"}:
            return err  # the membership checks below need hashable strings

        def num(name, lo, hi, integer=False, lo_open=False, allow_none=False):
            v = getattr(self, name)
            if v is None and allow_none:
                return
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            if ok and integer:
                ok = float(v).is_integer()
            if ok:
                ok = (v > lo if lo_open else v >= lo) and v <= hi
            if not ok:
                kind = "an integer" if integer else "a number"
                left = "(" if lo_open else "["
                err.append(f"{name} must be {kind} in {left}{lo}, {hi}], got {v!r}")

        if self.dataset not in DATASETS:
            err.append(f"dataset: unknown dataset {self.dataset!r}; choose one of {list(DATASETS)}")
        if self.model not in MODELS:
            err.append(f"model: unknown model {self.model!r}; choose one of {list(MODELS)}")
        try:
            import sam_core

            if self.optimizer not in sam_core.VARIANTS:
                err.append(f"optimizer: unknown variant {self.optimizer!r}; choose one of {list(sam_core.VARIANTS)}")
            elif not isinstance(self.hparams, dict):
                err.append("hparams must be a mapping of hyperparameter names to values")
            else:
                sam_core.resolve_hparams(self.optimizer, **self.hparams)
        except ValueError as exc:
            err.append(str(exc))
        if self.base not in BASES:
            err.append(f"base: unknown base optimizer {self.base!r}; choose one of {list(BASES)}")
        if self.lr_schedule not in SCHEDULES:
            err.append(f"lr_schedule must be one of {list(SCHEDULES)}, got {self.lr_schedule!r}")
        if self.loss not in LOSSES:
            err.append(f"loss must be one of {list(LOSSES)}, got {self.loss!r}")
        if self.loader not in LOADERS:
            err.append(f"loader must be one of {list(LOADERS)}, got {self.loader!r}")
        if not isinstance(self.device, str) or not (
            self.device in ("auto", "cpu", "mps") or self.device.startswith("cuda")
        ):
            err.append(f"device must be auto, cpu, cuda, cuda:N or mps, got {self.device!r}")
        num("epochs", 1, 100000, integer=True)
        num("batch_size", 1, 10**7, integer=True)
        num("lr", 0, 100, lo_open=True)
        num("momentum", 0, 0.999)
        num("weight_decay", 0, 1)
        num("label_smoothing", 0, 0.99)
        num("label_noise", 0, 1)
        num("seed", 0, 2**31 - 1, integer=True)
        num("subset", 1, 10**8, integer=True, allow_none=True)
        num("test_subset", 1, 10**8, integer=True, allow_none=True)
        num("log_every", 1, 100000, integer=True)
        num("hessian_every", 0, 10**7, integer=True)
        num("hessian_batch", 1, 100000, integer=True)
        num("hessian_iters", 2, 1000, integer=True)
        num("hutchinson", 0, 10000, integer=True)
        num("final_top_k", 0, 100, integer=True)
        num("eval_train_size", 0, 10**8, integer=True)
        num("num_workers", 0, 64, integer=True)
        num("checkpoint_minutes", 0, 10**6, lo_open=True)
        num("poll_seconds", 0, 3600)
        if not isinstance(self.sync_perturbation, bool):
            err.append(f"sync_perturbation must be true or false, got {self.sync_perturbation!r}")
        if self.nesterov and not self.momentum:
            err.append("nesterov needs momentum > 0")
        if self.loss == "mse" and self.label_smoothing:
            err.append("label_smoothing applies to the cross-entropy loss only (loss='ce')")
        if self.dataset in DATASETS and isinstance(self.batch_size, int) and not err_field(err, "batch_size", "subset"):
            n = self.train_size()
            if self.batch_size > n:
                where = f"subset={self.subset}" if self.subset else f"all of {DATASETS[self.dataset].label}"
                err.append(
                    f"batch_size {self.batch_size} is larger than the training set ({n} examples, {where}); "
                    f"use at most {n}"
                )
        return err

    def validate(self) -> RunConfig:
        err = self.errors()
        if err:
            raise ConfigError(err)
        return self


def dataset_defaults(dataset: str) -> dict[str, Any]:
    """RunConfig's defaults with the dataset's suggested settings (`DATASET_DEFAULTS`) on top."""
    out = RunConfig().to_dict()
    out.update(DATASET_DEFAULTS.get(dataset, {}))
    out["dataset"] = dataset
    return out


def _short(v: Any, limit: int = 60) -> str:
    """repr of a (possibly huge or deeply nested) value, cut short."""
    try:
        r = repr(v)
    except RecursionError:
        r = f"a deeply nested {type(v).__name__}"
    return r if len(r) <= limit else r[: limit - 1] + "…"


def err_field(errors: list[str], *names: str) -> bool:
    return any(e.startswith(n) for e in errors for n in names)


def label(cfg: RunConfig) -> str:
    """A short human label: 'ssam ρ=0.05 · lenet5 · cifar10 · seed 0'."""
    hp = ", ".join(f"{'ρ' if k == 'rho' else 'λ' if k == 'lam' else k}={v}" for k, v in sorted(cfg.hparams.items()))
    return f"{cfg.optimizer}{' ' + hp if hp else ''} · {cfg.model} · {cfg.dataset} · seed {cfg.seed}"
