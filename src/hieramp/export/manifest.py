"""manifest.json of an export directory: what was exported from which model, and the files' sha256.

Runtimes open an export through `ExportManifest.read`, then `check_model` and `verify_files`,
so a wrong model or a damaged file is a clear error, never a silent mismatch.
"""
import json
from dataclasses import asdict
from pathlib import Path

from ..directory_manifest import DirectoryManifest
from ..errors import UserError


def model_entry(model) -> dict:
    src = model.source
    return {"name": src.name, "fingerprint": src.fingerprint, "var_sha256": src.var_sha256,
            "vae_sha256": src.vae_sha256, "config": json.loads(json.dumps(asdict(model.cfg)))}


def check_amp_plan(manifest, plan, where: str, remake: str):
    """The run's amplification must be the one the graphs hold (blocks and mode are fixed at export).
    `manifest` is an export's or an engine directory's; `where` names it, `remake` says how to get other graphs."""
    if plan is None:
        return
    exported = manifest.amp_layers
    if not exported:
        raise UserError(f"{where} has no amplification layers: pass --no-amp, or {remake} with --amp-layers")
    if tuple(plan.layers) != exported:
        raise UserError(f"{where} amplifies blocks {list(exported)}, this run asks for {list(plan.layers)}: "
                        f"pass --amp-layers {','.join(map(str, exported))} or {remake} with the blocks you want")
    if plan.mode != manifest.amp_mode:
        raise UserError(f"{where} amplifies in mode {manifest.amp_mode!r}, this run asks for {plan.mode!r}: "
                        f"pass --amp-mode {manifest.amp_mode} or {remake} with --amp-mode {plan.mode}")


class ExportManifest(DirectoryManifest):
    FORMAT = "hieramp-onnx-export"
    FORMAT_VERSION = 1
    WHAT = "export directory"
    COMMAND = "hieramp export"
    MAKE = "hieramp export --out {directory}"

    # ----- what the export holds ------------------------------------------------------------

    @property
    def amp_layers(self) -> tuple:
        return tuple(self.data["amp"]["layers"])

    @property
    def amp_mode(self) -> str:
        return self.data["amp"]["mode"]

    @property
    def op_form(self) -> str:
        return self.data["amp"]["op_form"]

    @property
    def dtype(self) -> str:
        return self.data["dtype"]

    @property
    def quantization(self):
        """None, or the scheme of `export --quantize` ("int8-dynamic"); exports before it have none."""
        return self.data.get("quantization")

    @property
    def precision(self) -> str:
        """What `hieramp compare` picks its tolerances by: the dtype, or int8 for quantised exports."""
        return "int8" if self.quantization else self.dtype

    @property
    def patch_nums(self) -> tuple:
        return tuple(self.data["patch_nums"])

    @property
    def vocab_size(self) -> int:
        return self.data["model"]["config"]["vae"]["vocab_size"]

    @property
    def max_batch(self) -> int:
        return self.data["max_batch"]

    def graph(self, name: str, scale: int = None) -> Path:
        entry = self.data["graphs"][name]
        return self.directory / (entry[scale] if scale is not None else entry)

    # ----- checks ---------------------------------------------------------------------------

    def check_model(self, model):
        """The export must come from these very weights and this configuration."""
        made = self.data["model"]
        given = model_entry(model)
        if made["fingerprint"] != given["fingerprint"] or made["config"] != given["config"]:
            raise UserError(f"export {self.directory} was made from model {made['name']} ({made['fingerprint']}), "
                            f"not {given['name']} ({given['fingerprint']}): re-run `hieramp export` with this model")
