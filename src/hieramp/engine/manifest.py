"""manifest.json of an engine directory (`hieramp build`): which export the engines come from,
which TensorRT built them, for which GPU, precision and optimization profiles, and the files' sha256.

Runtimes open it with `EngineManifest.read`, then `check`: a wrong model is refused; engines
that no longer fit (another TensorRT, GPU, precision, or an export changed since the build) are
refused with the reason, or rebuilt by the caller (`stale_reason`).
"""
from pathlib import Path
from typing import Optional

import torch

from ..directory_manifest import MANIFEST, DirectoryManifest
from ..errors import UserError
from ..export.dit import DiTExportManifest
from ..export.manifest import ExportManifest, model_entry
from ..trt_import import TENSORRT_RTX, TensorRT

AHEAD_OF_TIME = "ahead-of-time, no GPU"
RTX_MIN_CAPABILITY = (8, 0)     # TensorRT-RTX's default targets; Turing (7.5) needs an explicit build


def describe_gpu(device) -> dict:
    """Name and compute capability of a CUDA device, as engine manifests record them."""
    device = torch.device(device)
    major, minor = torch.cuda.get_device_capability(device)
    return {"name": torch.cuda.get_device_name(device), "compute_capability": f"{major}.{minor}"}


def _capability(text: str) -> tuple:
    major, minor = text.split(".")
    return int(major), int(minor)


class EngineManifest(DirectoryManifest):
    FORMAT = "hieramp-trt-engines"
    FORMAT_VERSION = 1
    WHAT = "engine directory"
    COMMAND = "hieramp build"
    MAKE = "hieramp build EXPORT_DIR --out {directory}"

    # ----- what the engines hold ------------------------------------------------------------

    @property
    def flavour(self) -> str:
        return self.data["tensorrt"]["flavour"]

    @property
    def tensorrt_name(self) -> str:
        return self.data["tensorrt"]["name"]

    @property
    def precision(self) -> str:
        return self.data["precision"]

    @property
    def backbone(self) -> str:
        """"var" or "dit" (builds from before DiT engines are VAR)."""
        return self.data["export"].get("backbone", "var")

    @property
    def batch_sizes(self) -> tuple:
        return tuple(self.data["batch_sizes"])

    @property
    def export_dir(self) -> Path:
        return Path(self.data["export"]["directory"])

    @property
    def amp_layers(self) -> tuple:
        return tuple(self.data["export"]["amp"]["layers"])

    @property
    def amp_mode(self) -> Optional[str]:
        return self.data["export"]["amp"]["mode"]

    @property
    def amp_op(self) -> Optional[str]:
        """How the step engine computes the op: "plugin", "function" (inlined body) or None."""
        return self.data["amp_op"]

    def engine(self, name: str, scale: int = None) -> Path:
        entry = self.data["engines"][name]
        return self.directory / (entry[scale] if scale is not None else entry)

    def batch_size_for(self, rows: int) -> int:
        """The built batch size a run of `rows` images uses (the smallest that holds them)."""
        for size in self.batch_sizes:
            if rows <= size:
                return size
        raise UserError(f"the engines in {self.directory} were built for batch sizes up to {max(self.batch_sizes)}, "
                        f"not {rows}: use a smaller batch or rebuild with `hieramp build --batch-sizes ...,{rows}`")

    def profile(self, graph: str, batch: int, scale: int = None) -> int:
        """Index of the optimization profile of `graph` for a built batch size (and a scale)."""
        for index, p in enumerate(self.data["profiles"][graph]):
            lo, hi = p["batch"]
            if lo <= batch <= hi and p["scale"] == scale:
                return index
        raise KeyError(f"the {graph} engine has no profile for batch {batch} and scale {scale}")

    # ----- checks ---------------------------------------------------------------------------

    def check(self, model, tensorrt: TensorRT, gpu: dict, precision: str = None):
        """Refuse engines that were not built from this model or that do not fit this runtime."""
        self.check_model(model)
        reason = self.stale_reason(tensorrt, gpu, precision)
        if reason is not None:
            raise UserError(f"{reason}: rebuild with `hieramp build {self.export_dir} --out {self.directory}`, "
                            f"or pass --rebuild")
        self.verify_files()

    def check_model(self, model):
        made, given = self.data["export"]["model"], model_entry(model)
        if made["fingerprint"] != given["fingerprint"] or made["config"] != given["config"]:
            raise UserError(f"the engines in {self.directory} were built from model {made['name']} "
                            f"({made['fingerprint']}), not {given['name']} ({given['fingerprint']}): export and "
                            f"build this model, or pass the model the engines were built from")

    def stale_reason(self, tensorrt: TensorRT, gpu: dict, precision: str = None) -> Optional[str]:
        """Why these engines do not fit this runtime (a rebuild from the export fixes it), or None."""
        where = f"the engines in {self.directory}"
        built = self.data["tensorrt"]
        if (built["flavour"], built["version"]) != (tensorrt.flavour, tensorrt.version):
            return f"{where} were built with {built['name']}, this is {tensorrt.name}"
        if precision is not None and precision != self.precision:
            return f"{where} are {self.precision}, {precision} was asked"
        made_on = self.data["gpu"]
        if made_on["target"] == AHEAD_OF_TIME:
            if _capability(gpu["compute_capability"]) < RTX_MIN_CAPABILITY:
                return (f"{where} were built ahead of time for TensorRT-RTX's default targets (compute capability "
                        f"{'.'.join(map(str, RTX_MIN_CAPABILITY))} and later), this GPU ({gpu['name']}) is "
                        f"{gpu['compute_capability']}")
        elif made_on["compute_capability"] != gpu["compute_capability"]:
            return (f"{where} were built for {made_on['name']} (compute capability {made_on['compute_capability']}), "
                    f"this GPU is {gpu['name']} ({gpu['compute_capability']})")
        export = self.data["export"]
        if (self.export_dir / MANIFEST).is_file():
            now = (DiTExportManifest if self.backbone == "dit" else ExportManifest).read(self.export_dir).artifact_id
            if now != export["artifact_id"]:
                return (f"{where} were built from export artifact {export['artifact_id']}, and {self.export_dir} "
                        f"now holds artifact {now}")
        return None


def gpu_entry(tensorrt: TensorRT, device=None) -> dict:
    """What the manifest records as the target GPU of a build made here."""
    if tensorrt.flavour == TENSORRT_RTX:
        return {"target": AHEAD_OF_TIME, "compute_capabilities": "TensorRT-RTX defaults"}
    if not torch.cuda.is_available():
        raise UserError(f"{tensorrt.name} builds on the GPU the engines are for, and torch sees none here: build there, "
                        f"or build ahead of time with --flavour tensorrt-rtx")
    return {"target": "device", **describe_gpu(device or "cuda")}
