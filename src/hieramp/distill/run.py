"""distill(): make (this shard's part of) a distilled dataset, resuming whatever is finished."""
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from .. import checks
from ..errors import UserError
from ..model.amp_config import AmpConfig
from ..model.sampling import SamplingParams
from ..runtime.images import DEFAULT_PNG_LEVEL, PNG_LEVELS
from .layout import Layout
from .manifest import ShardManifest, finished_jobs, manifest_name
from .plan import Shard, plan_jobs
from .writer import BLANK, NONFINITE, OK, ImageWriter


@dataclass(frozen=True)
class DistillSettings:
    """What, besides the model, backend and (class, index), decides an image's bytes. `sampling`
    and `amp` are the backbone's: SamplingParams and AmpConfig for VAR, DiTSampling and
    DiTAmpConfig for DiT."""
    seed: int = 0
    sampling: SamplingParams = SamplingParams()
    amp: AmpConfig = AmpConfig()
    save_size: int = 224
    png_level: int = DEFAULT_PNG_LEVEL         # zlib level: the file bytes, not the pixels

    def __post_init__(self):
        checks.seed(self.seed)


@dataclass
class DistillSummary:
    out: Path
    shard: Shard
    planned: int            # this shard's images
    skipped: int            # finished by an earlier run
    written: int            # saved now
    rejected: dict          # status -> count of images found blank or non-finite now, not saved
    seconds: float
    dataset_finished: int   # over all shards, when this one ended
    dataset_total: int
    manifest: Path          # this shard's

    @property
    def images_per_s(self) -> float:
        made = self.written + sum(self.rejected.values())
        return made / self.seconds if self.seconds > 0 else 0.0

    def __str__(self):
        lines = [f"shard {self.shard}: {self.planned} images, {self.written} written now, {self.skipped} already done, "
                 f"{sum(self.rejected.values())} rejected; {self.seconds:.1f} s, {self.images_per_s:.2f} img/s",
                 f"dataset {self.out}: {self.dataset_finished}/{self.dataset_total} images finished"
                 + (" (complete)" if self.dataset_finished == self.dataset_total else "; rerun to finish")]
        if any(self.rejected.values()):
            counts = ", ".join(f"{status} {n}" for status, n in sorted(self.rejected.items()) if n)
            lines.append(f"warning: images not saved ({counts}); see the manifest lines with that status")
        return "\n".join(lines)


def image_settings(generator, settings: DistillSettings, plan) -> dict:
    """The settings every manifest line records and run.json pins (JSON-ready). A reduced precision
    is one of them (its images differ); fp32 runs keep the keys they had before precisions existed."""
    settings = {
        "model": generator.model.source.fingerprint,
        "backend": generator.backend.name,
        "artifact": generator.backend.artifact_id,
        "seed": settings.seed,
        "sampling": settings.sampling.record(),
        "amp": dataclasses.asdict(plan) if plan is not None else None,
        "save_size": settings.save_size,
        "png_level": settings.png_level,
    }
    precision = getattr(generator.backend, "precision", "fp32")
    if precision != "fp32":
        settings["precision"] = precision
    return settings


def batches(jobs, size: int):
    for start in range(0, len(jobs), size):
        yield jobs[start:start + size]


def distill(generator, classes, ipc: int, out, settings=DistillSettings(), shard=Shard(), batch_size=8,
            overlap=True, write_workers=1, progress=True) -> DistillSummary:
    """Generate images 0 .. ipc-1 of every class into OUT (created beforehand), skipping finished ones.

    An image depends only on (seed, class, index), the model and `settings`: not on `batch_size`,
    `shard`, `overlap`, `write_workers` or where an earlier run stopped. `overlap=False` writes
    between batches instead of during them; `write_workers` threads encode a batch's PNGs.
    """
    if batch_size < 1 or write_workers < 1:
        raise UserError(f"batch size and write workers must be at least 1, got {batch_size} and {write_workers}")
    if settings.save_size < 1:
        raise UserError(f"save size must be at least 1 pixel, got {settings.save_size}")
    if settings.png_level not in PNG_LEVELS:
        raise UserError(f"PNG compression level must be 0-9, got {settings.png_level}")
    classes = generator.check_labels(classes)
    all_jobs = plan_jobs(classes, ipc)
    jobs = shard.select(all_jobs)
    # the plan, and the backend's refusals before anything is written
    plan = generator.check(min(batch_size, max(len(jobs), 1)), settings.amp, settings.sampling)
    record = image_settings(generator, settings, plan)
    layout = Layout(out, generator.cfg.num_classes)
    layout.claim({"classes": classes, "ipc": ipc, **record})
    layout.write_mapping(classes)
    manifest_path = layout.out / manifest_name(shard)
    with ShardManifest(manifest_path) as manifest:             # holds this shard's lock from here on
        finished = finished_jobs(layout.out)
        pending = [job for job in jobs if job not in finished]
        layout.remove_stale_temps(jobs)
        layout.make_folders(classes)
        start = time.perf_counter()
        with tqdm(total=len(jobs), initial=len(jobs) - len(pending), unit="img", desc=f"distill {shard}",
                  disable=not progress, dynamic_ncols=True) as bar, \
                ImageWriter(layout, manifest, record, settings, bar, overlap, write_workers) as writer:
            for batch in batches(pending, batch_size):
                result = generator.run([job.label for job in batch], seed=settings.seed, sampling=settings.sampling,
                                       amp=settings.amp, indices=[job.index for job in batch])
                writer.submit(batch, result.images)
        seconds = time.perf_counter() - start
    return DistillSummary(
        out=layout.out, shard=shard, planned=len(jobs), skipped=len(jobs) - len(pending),
        written=writer.counts[OK], rejected={BLANK: writer.counts[BLANK], NONFINITE: writer.counts[NONFINITE]},
        seconds=seconds, dataset_finished=len(finished_jobs(layout.out) & set(all_jobs)),
        dataset_total=len(all_jobs), manifest=manifest_path,
    )
