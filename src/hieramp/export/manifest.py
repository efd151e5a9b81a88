"""manifest.json of an export directory: what was exported from which model, and the files' sha256.

Runtimes open an export through `ExportManifest.read`, then `check_model` and `verify_files`,
so a wrong model or a damaged file is a clear error, never a silent mismatch.
"""
import hashlib
import json
from dataclasses import asdict
from pathlib import Path

from ..errors import UserError
from ..model.checkpoint import sha256_of

MANIFEST = "manifest.json"
FORMAT = "hieramp-onnx-export"
FORMAT_VERSION = 1


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


class ExportManifest:
    def __init__(self, directory: Path, data: dict, text: str):
        self.directory, self.data = Path(directory), data
        self.artifact_id = hashlib.sha256(text.encode()).hexdigest()[:12]

    @classmethod
    def write(cls, directory: Path, data: dict) -> "ExportManifest":
        text = json.dumps(data, indent=2) + "\n"
        (Path(directory) / MANIFEST).write_text(text)
        return cls(directory, data, text)

    @classmethod
    def read(cls, directory) -> "ExportManifest":
        directory = Path(directory)
        path = directory / MANIFEST
        if not directory.is_dir():
            raise UserError(f"export directory {directory} does not exist: make one with `hieramp export --out {directory}`")
        try:
            text = path.read_text()
            data = json.loads(text)
        except FileNotFoundError:
            raise UserError(f"{directory} has no {MANIFEST}: is it a directory made by `hieramp export`?") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise UserError(f"cannot read {path} ({err}): re-run `hieramp export`") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise UserError(f"{path} is not a hieramp ONNX export manifest: re-run `hieramp export`")
        if data.get("format_version") != FORMAT_VERSION:
            raise UserError(f"{path} has format version {data.get('format_version')}, this hieramp reads "
                            f"{FORMAT_VERSION}: re-run `hieramp export` with this version")
        return cls(directory, data, text)

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

    def verify_files(self):
        """Every file listed in the manifest exists and has its recorded sha256."""
        for name, digest in self.data["files"].items():
            path = self.directory / name
            if not path.is_file():
                raise UserError(f"{path} is missing from the export: re-run `hieramp export`")
            if sha256_of(path) != digest:
                raise UserError(f"{path} is damaged (its sha256 differs from the manifest's): re-run `hieramp export`")
