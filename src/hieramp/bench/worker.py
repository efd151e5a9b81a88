"""One process per backend: it holds that backend's variants and runs one batch when told.

Separate processes give each backend its own peak-memory reading (process RSS, or the device
allocator's peak) that other backends' weights do not inflate; the parent runs one batch at a
time, so the processes never compete for the cores.
"""
import multiprocessing
import signal
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from ..errors import UserError
from ..model.presets import resolve_model
from ..model.sampling import SamplingParams, batch_noise
from ..runtime.backends import device_for
from ..runtime.generator import default_indices
from ..runtime.loop import run_scales
from .backends import BackendUnavailable, make_backend
from .memory import PeakMemory
from .timing import TimedBackend
from .variants import variant_models


@dataclass(frozen=True)
class ModelSpec:
    """What --model, --vae, --random-init and --trust-checkpoint name; each process loads it itself."""
    model: str = "tiny"
    vae: Optional[str] = None
    random_init: bool = False
    trust_checkpoint: bool = False

    def load(self):
        return resolve_model(self.model, self.vae, "cpu", self.trust_checkpoint, self.random_init)


@dataclass(frozen=True)
class WorkerJob:
    backend: str
    device: str
    spec: ModelSpec
    variants: tuple
    export_root: str
    batch_sizes: tuple
    sampling: SamplingParams
    threads: Optional[int] = None         # intra-op threads of torch and ONNX Runtime; None: their defaults
    precision: str = "fp32"


@dataclass(frozen=True)
class Sample:
    """One timed batch."""
    seconds: float
    peak_mem_mb: float
    stages: Optional[dict] = None     # stage -> seconds, when the batch was profiled


class Arm:
    """One variant on one backend."""

    def __init__(self, backend, model, amp, device, sampling):
        self.backend = backend
        self.cfg = model.cfg
        self.plan = amp.resolve(model.cfg)
        self.sampling = sampling
        self.memory = PeakMemory(device, backend)
        self.synchronize = torch.cuda.synchronize if self.memory.on_device else None

    def run(self, batch: int, seed: int, profile: bool) -> Sample:
        labels = [i % self.cfg.num_classes for i in range(batch)]
        backend = TimedBackend(self.backend, self.synchronize) if profile else self.backend
        self.memory.reset()
        if self.synchronize:
            self.synchronize()
        start = time.perf_counter()
        noise = batch_noise(seed, labels, default_indices(labels), self.cfg.patch_nums)
        run_scales(backend, torch.tensor(labels), noise, self.sampling, self.plan)   # ends by fetching the images
        if self.synchronize:
            self.synchronize()
        seconds = time.perf_counter() - start
        stages = None
        if profile:
            stages = dict(backend.seconds, other=seconds - sum(backend.seconds.values()))
        return Sample(seconds, self.memory.peak_mb(), stages)


def build_arms(job: WorkerJob):
    if job.threads:
        torch.set_num_threads(job.threads)
    model = job.spec.load()
    models, skipped = variant_models(model, job.variants)
    device = device_for(job.backend, job.device)
    arms = {}
    for variant, (variant_model, amp) in models.items():
        backend = make_backend(job.backend, variant_model, amp, variant, job.device, Path(job.export_root),
                               job.batch_sizes, job.threads, job.precision)
        arms[variant] = Arm(backend, variant_model, amp, device, job.sampling)
    info = {"model": model.source.name, "num_scales": model.cfg.num_scales, "depth": model.cfg.depth,
            "image_size": model.cfg.vae.image_size, "on_device": torch.device(device).type == "cuda", "memory": PeakMemory(device).kind, "skipped": skipped}
    return arms, info


def serve(conn, job: WorkerJob):
    """The process body: build the arms, say so, then answer (variant, batch, seed, profile) requests."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)         # Ctrl-C is the parent's to handle; it closes this process
    try:
        arms, info = build_arms(job)
    except BackendUnavailable as err:
        conn.send(("unavailable", str(err)))
        return
    except UserError as err:
        conn.send(("user_error", str(err)))
        return
    except Exception:
        conn.send(("error", traceback.format_exc()))
        return
    conn.send(("ready", info))
    while (request := conn.recv()) is not None:
        variant, batch, seed, profile = request
        try:
            conn.send(("sample", arms[variant].run(batch, seed, profile)))
        except UserError as err:
            conn.send(("user_error", str(err)))
        except Exception:
            conn.send(("error", traceback.format_exc()))


class Worker:
    """The parent's handle on one backend's process."""

    def __init__(self, job: WorkerJob):
        self.backend, self.precision = job.backend, job.precision
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=serve, args=(child, job), name=f"hieramp-bench-{job.backend}", daemon=True)
        self._process.start()
        child.close()
        kind, payload = self._receive()
        if kind == "unavailable":
            self.close()
            raise BackendUnavailable(payload)
        self.info = payload

    def _receive(self):
        try:
            kind, payload = self._conn.recv()
        except EOFError:
            self._process.join()
            raise RuntimeError(f"the {self.backend} benchmark process died (exit code {self._process.exitcode})") from None
        if kind == "user_error":
            raise UserError(payload)
        if kind == "error":
            raise RuntimeError(f"the {self.backend} benchmark process failed:\n{payload}")
        return kind, payload

    def run(self, variant: str, batch: int, seed: int, profile: bool) -> Sample:
        self._conn.send((variant, batch, seed, profile))
        return self._receive()[1]

    def close(self):
        if self._process.is_alive():
            try:
                self._conn.send(None)
            except (BrokenPipeError, OSError):
                pass
            self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.terminate()
        self._conn.close()
