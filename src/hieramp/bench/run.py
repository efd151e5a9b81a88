"""The benchmark schedule: every (backend, variant) arm in turn within one round (A B A B ...), so
drift in the machine's load hits all arms alike; medians and spread over the rounds."""
import statistics
import tempfile
from dataclasses import dataclass, field, replace
from typing import Optional

from tqdm import tqdm

from ..errors import UserError
from ..model.sampling import SamplingParams
from ..precision import check_precision
from .backends import BackendUnavailable, check_available
from .machine import describe_machine, load_average
from .timing import stage_names
from .variants import DESCRIPTIONS, DIT_DESCRIPTIONS, VARIANTS, paper_amp
from .worker import ModelSpec, Worker, WorkerJob

REFERENCE = "torch"                   # the column of torch in fp32
BACKEND_ORDER = ("torch", "onnxruntime", "tensorrt")
WARMUP_SEED = 1_000_000      # warmup batches draw other noise than the measured ones


def column_name(backend: str, precision: str) -> str:
    return backend if precision == "fp32" else f"{backend} {precision}"


@dataclass(frozen=True)
class BenchSettings:
    spec: ModelSpec = field(default_factory=ModelSpec)
    backends: tuple = ("torch",)
    batch_sizes: tuple = (1,)
    variants: tuple = VARIANTS
    warmup: int = 1
    iters: int = 5
    device: str = "cpu"
    export_dir: Optional[str] = None     # where exports are kept between runs; None: a temporary directory
    threads: Optional[int] = None        # intra-op threads of torch and ONNX Runtime; None: their defaults
    sampling: SamplingParams = field(default_factory=SamplingParams)
    steps: Optional[int] = None          # DiT: denoising steps per image
    precisions: tuple = ("fp32",)        # each backend runs in each; torch fp32 is always the reference

    def columns(self) -> list:
        """(column, backend, precision) per arm: `torch`, `torch bf16`, `onnxruntime fp16`, ..."""
        return [(column_name(b, p), b, p) for b in self.backends for p in self.precisions]

    def checked(self) -> "BenchSettings":
        """Torch first (the reference every figure is a ratio to), no repeats, known names."""
        for name in self.backends:
            if name not in BACKEND_ORDER:
                raise UserError(f"unknown backend {name!r}: use some of {', '.join(BACKEND_ORDER)}")
        for name in self.variants:
            if name not in VARIANTS:
                raise UserError(f"unknown variant {name!r}: use some of {', '.join(VARIANTS)}")
        if not self.batch_sizes or min(self.batch_sizes) < 1:
            raise UserError(f"batch sizes must be positive integers, got {list(self.batch_sizes)}")
        if self.threads is not None and self.threads < 1:
            raise UserError(f"--threads must be at least 1, got {self.threads}")
        for precision in self.precisions:
            check_precision(precision, self.device)
        if self.iters < 1 or self.warmup < 0:
            raise UserError(f"need --iters >= 1 and --warmup >= 0, got {self.iters} and {self.warmup}")
        return replace(self, backends=(REFERENCE, *dict.fromkeys(b for b in self.backends if b != REFERENCE)),
                       batch_sizes=tuple(dict.fromkeys(self.batch_sizes)),
                       variants=tuple(v for v in VARIANTS if v in self.variants),
                       precisions=("fp32", *dict.fromkeys(p for p in self.precisions if p != "fp32")))


@dataclass(frozen=True)
class ArmResult:
    """One backend column (a backend in one precision), variant and batch size: the seconds per
    image of each measured round."""
    backend: str                          # the column: backend, then the precision unless fp32
    variant: str
    batch_size: int
    s_per_img: tuple
    peak_mem_mb: float
    stages: dict                          # stage -> median seconds per image
    precision: str = "fp32"

    @property
    def median(self) -> float:
        return statistics.median(self.s_per_img)

    @property
    def best(self) -> float:
        return min(self.s_per_img)

    @property
    def img_per_s(self) -> float:
        return 1 / self.median

    def to_json(self) -> dict:
        return {"backend": self.backend, "precision": self.precision, "variant": self.variant, "batch_size": self.batch_size,
                "s_per_img_median": self.median, "s_per_img_min": self.best,
                "s_per_img_max": max(self.s_per_img), "img_per_s": self.img_per_s,
                "peak_mem_mb": round(self.peak_mem_mb, 1)}


@dataclass
class BenchReport:
    machine: dict
    settings: dict
    results: list
    unavailable: dict                     # backend -> why it did not run

    def result(self, backend, variant, batch_size) -> Optional[ArmResult]:
        return next((r for r in self.results if (r.backend, r.variant, r.batch_size) == (backend, variant, batch_size)), None)

    def ratio_to_reference(self, r: ArmResult) -> float:
        """How many times faster than torch on the same variant and batch size."""
        return self.result(REFERENCE, r.variant, r.batch_size).median / r.median

    def overhead(self, backend, batch_size, variant, over, stat="median") -> Optional[float]:
        """Relative extra time of `variant` over `over` (0.02 = 2 % slower), of medians or of bests."""
        a, b = self.result(backend, variant, batch_size), self.result(backend, over, batch_size)
        return None if a is None or b is None else getattr(a, stat) / getattr(b, stat) - 1

    def to_json(self) -> dict:
        stages = [{"backend": r.backend, "variant": r.variant, "batch_size": r.batch_size, "stage": stage,
                   "s_per_img_median": seconds} for r in self.results for stage, seconds in r.stages.items()]
        return {"machine": self.machine, "settings": self.settings, "results": [r.to_json() for r in self.results],
                "stages": stages, "unavailable": self.unavailable}


def _start_workers(settings, export_root):
    """One process per backend column that can run here; the others go to `unavailable` with the reason."""
    workers, unavailable = {}, {}
    try:
        for column, name, precision in settings.columns():
            try:
                check_available(name, settings.device)
                worker = Worker(WorkerJob(name, settings.device, settings.spec, settings.variants, export_root,
                                          settings.batch_sizes, settings.sampling, settings.threads, precision,
                                          steps=settings.steps))
            except BackendUnavailable as err:
                if column == REFERENCE:
                    raise UserError(f"the torch reference cannot run: {err}") from None
                unavailable[column] = str(err)
                continue
            workers[column] = worker
    except BaseException:
        for worker in workers.values():
            worker.close()
        raise
    return workers, unavailable


def _median_stages(profiles, batch, num_scales):
    return {stage: statistics.median(p.stages.get(stage, 0.0) for p in profiles) / batch for stage in stage_names(num_scales)}


def _measure(settings, workers, arms, bar):
    """(backend, variant, batch) -> measured samples, and the profiled samples of the stage breakdown.

    On CPU every measured batch is also profiled (timing a call needs no synchronisation); on a
    GPU the measured batches run unwrapped and one extra synchronised batch gives the breakdown.
    """
    measured, profiled = {}, {}
    rounds = settings.warmup + settings.iters
    for batch in settings.batch_sizes:
        for rnd in range(rounds):
            timed = rnd >= settings.warmup
            seed = rnd - settings.warmup if timed else WARMUP_SEED + rnd
            for variant, backend in arms:
                on_device = workers[backend].info["on_device"]
                sample = workers[backend].run(variant, batch, seed, profile=timed and not on_device)
                if timed:
                    measured.setdefault((backend, variant, batch), []).append(sample)
                    if not on_device:
                        profiled.setdefault((backend, variant, batch), []).append(sample)
                bar.update(batch)
            bar.set_postfix(load=load_average())
        for variant, backend in arms:
            if workers[backend].info["on_device"]:
                profiled[backend, variant, batch] = [workers[backend].run(variant, batch, 0, profile=True)]
    return measured, profiled


def run_bench(settings: BenchSettings, progress: bool = True) -> BenchReport:
    settings = settings.checked()
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="hieramp-bench-") as tmp:
        workers, unavailable = _start_workers(settings, settings.export_dir or tmp)
        try:
            info = workers[REFERENCE].info
            variants = [v for v in settings.variants if v not in info["skipped"]]
            arms = [(v, b) for v in variants for b in workers]          # backends alternate within a variant
            total = sum(settings.batch_sizes) * (settings.warmup + settings.iters) * len(arms)
            with tqdm(total=total, unit="img", desc="bench", disable=not progress) as bar:
                measured, profiled = _measure(settings, workers, arms, bar)
        finally:
            for worker in workers.values():
                worker.close()
    columns = [column for column, _, _ in settings.columns()]
    results = [ArmResult(column, variant, batch, tuple(s.seconds / batch for s in samples),
                         max(s.peak_mem_mb for s in samples),
                         _median_stages(profiled[column, variant, batch], batch, info["num_scales"]),
                         workers[column].precision)
               for (column, variant, batch), samples in measured.items()]
    results.sort(key=lambda r: (r.batch_size, VARIANTS.index(r.variant), columns.index(r.backend)))
    machine = dict(describe_machine(), load_1min_before=load_before, load_1min_after=load_average())
    return BenchReport(machine, _settings_record(settings, workers, variants), results, unavailable)


def _settings_record(settings, workers, variants):
    info = workers[REFERENCE].info
    dit = info["backbone"] == "dit"
    amp = paper_amp(info["depth"])
    descriptions = DIT_DESCRIPTIONS if dit else DESCRIPTIONS
    return {
        "model": info["model"], "backbone": info["backbone"], "image_size": info["image_size"],
        "backends": [column for column, _, _ in settings.columns()], "precisions": list(settings.precisions),
        "batch_sizes": list(settings.batch_sizes), "variants": {v: descriptions[v] for v in variants},
        "variants_skipped": info["skipped"], "warmup": settings.warmup, "iters": settings.iters,
        "device": settings.device, "threads": settings.threads or "default", "schedule": "interleaved: each round runs every (variant, backend) once",
        "amp": {"mode": "gain" if dit else amp.mode, "beta": amp.beta, "rho": amp.rho, "layers": list(amp.layers)},
        "sampling": info["sampling"],
        "peak_mem": {name: w.info["memory"] for name, w in workers.items()},
    }
