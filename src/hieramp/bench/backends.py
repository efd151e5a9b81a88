"""Building one backend for one variant, exporting the model (and building engines) first where
the backend runs an export.

A backend that cannot run here (its module, TensorRT or a GPU missing) raises
`BackendUnavailable`, and the benchmark reports its column as unavailable instead of failing.
"""
from pathlib import Path

from ..errors import UserError
from ..model.amp_config import default_amp_layers
from ..model.dit import DiTModel
from ..runtime.backends import BACKENDS, availability, backend_class, device_for


class BackendUnavailable(Exception):
    """This backend cannot run on this machine or in this build; the message says why."""


def check_available(backend: str, device: str):
    """The backend's class, or BackendUnavailable; cheap enough to ask before loading any model."""
    reason = availability(backend, device_for(backend, device))
    if reason is not None:
        raise BackendUnavailable(reason)
    return backend_class(backend)


def export_variant(model, amp, key: str, export_root: Path, batch_sizes, dtype: str = "fp32") -> Path:
    """The model exported with the variant's amplification layers; kept under `export_root` and
    reused by later runs (the directory name holds the model fingerprint and every option). The op
    is exported in function form: ONNX Runtime runs its body, TensorRT-RTX inlines it, and
    TensorRT takes the registered plugin in its place."""
    from ..export import ExportManifest, export_model
    plan = amp.resolve(model.cfg)
    out = Path(export_root) / f"{model.source.fingerprint}-{key}-b{max(batch_sizes)}-{dtype}"
    if not ExportManifest.describes(out):
        export_model(model, out, amp_layers=plan.layers if plan else (), amp_mode=plan.mode if plan else "logit",
                     op_form="function", max_batch=max(batch_sizes), dtype=dtype, progress=False)
    return out


def engines_for(export_dir: Path, precision: str, batch_sizes) -> Path:
    """The engines of an export (built next to it on first use)."""
    from ..engine import EngineManifest, build_engines
    engine_dir = export_dir.with_name(export_dir.name + f"-engines-{precision}")
    if not EngineManifest.describes(engine_dir):
        build_engines(export_dir, engine_dir, precision=precision, batch_sizes=tuple(batch_sizes))
    return engine_dir


def dit_backend(backend: str, model, amp, device: str, export_root: Path, batch_sizes, threads=None):
    """A DiT backend; both variants share one export (beta = 1 runs its blocks unamplified).
    After exporting, the onnxruntime process drops its torch weights: one copy in memory."""
    try:
        cls = backend_class(backend, "dit")
        artifact = BACKENDS[backend].artifact
        if artifact is None:
            return cls(model, device=device)
        if artifact == "engine_dir":
            check_available(backend, device)
        from ..export.dit import DiTExportManifest, export_dit
        layers = tuple(amp.layers) if amp.layers is not None else default_amp_layers(model.cfg.depth)
        out = Path(export_root) / f"{model.source.fingerprint}-dit-{'-'.join(map(str, layers))}"
        if not DiTExportManifest.describes(out):
            export_dit(model, out, layers)
        if artifact == "engine_dir":
            return cls(model, device=device_for(backend, device), engine_dir=engines_for(out, "fp32", batch_sizes))
        model.dit.to("meta")
        return cls(model, device=device, export_dir=out, threads=threads)
    except UserError as err:
        raise BackendUnavailable(str(err).splitlines()[0]) from None


def make_backend(backend: str, model, amp, variant: str, device: str, export_root: Path, batch_sizes, threads=None,
                 precision="fp32"):
    """The backend with the artifact it runs (`BACKENDS[backend].artifact`) made first. `precision`:
    torch runs it; ONNX Runtime runs an export of that dtype; TensorRT builds an fp32 export's
    engines in it (there is no bf16 export: ONNX Runtime's CPU provider has no bf16 kernels).
    DiT runs in fp32 only."""
    if isinstance(model, DiTModel):
        if precision != "fp32":
            raise BackendUnavailable(f"DiT runs in fp32 only, not {precision}")
        return dit_backend(backend, model, amp, device, export_root, batch_sizes, threads)
    cls = check_available(backend, device)
    device = device_for(backend, device)
    try:
        artifact = BACKENDS[backend].artifact
        if artifact is None:
            return cls(model, device=device, precision=precision)
        if artifact == "export_dir" and precision == "bf16":
            raise BackendUnavailable("exports have no bf16 (ONNX Runtime's CPU provider has no bf16 MatMul or Add)")
        export_dir = export_variant(model, amp, variant, export_root, batch_sizes,
                                    precision if artifact == "export_dir" else "fp32")
        if artifact == "export_dir":
            return cls(model, device=device, export_dir=export_dir, threads=threads)
        return cls(model, device=device, engine_dir=engines_for(export_dir, precision, batch_sizes))
    except UserError as err:
        raise BackendUnavailable(str(err).splitlines()[0]) from None
