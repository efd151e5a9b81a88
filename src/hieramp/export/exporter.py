"""`export_model`: a HierAmpModel -> an export directory of ONNX graphs and manifest.json.

Graphs (`graphs.graph_names`, docs/design.md "Data flow"): condition, step (one graph for every
scale), sample, update_<s> per scale, decode. The directory is built under a temporary name and renamed into place at the
end, so a failed export leaves nothing half-written.
"""
import copy
import importlib.metadata
import tempfile
import warnings
from pathlib import Path

import onnx
import torch
from tqdm import tqdm

from ..errors import UserError
from ..files import sha256_of, staged_directory
from ..model.amp_config import AmpConfig, default_amp_layers
from . import onnx_files
from .amp_function import DOMAIN, OP_NAME, OP_VERSION, function_proto
from .graphs import SAMPLE, STEP, graph_file, graph_files, graph_names, traceable
from .manifest import ExportManifest, model_entry
from .quantize import SCHEME, quantize_step
from .resize_patch import resize_as_matrices
from .sample_graph import sample_model

OPSETS = range(17, 21)            # LayerNormalization needs 17; 20 is the TorchScript exporter's newest
DEFAULT_OPSET = 18
DEFAULT_MAX_BATCH = 8             # the largest batch engines are built for unless told
DTYPES = {"fp32": torch.float32, "fp16": torch.float16}
OP_FORMS = ("function", "plugin")
SUFFIX = ".onnx"                  # of each graph's file


def check_options(cfg, amp_layers, amp_mode, op_form, opset, dtype, max_batch, quantize=False):
    if op_form not in OP_FORMS:
        raise UserError(f"unknown op form {op_form!r}: use function (runs anywhere) or plugin (TensorRT plugin)")
    if opset not in OPSETS:
        raise UserError(f"opset {opset} is not supported: use {OPSETS.start}-{OPSETS.stop - 1} "
                        f"(LayerNormalization needs 17)")
    if dtype not in DTYPES:
        raise UserError(f"unknown dtype {dtype!r}: use fp32 or fp16")
    if quantize and dtype != "fp32":
        raise UserError(f"--quantize turns fp32 weights into int8: export with --dtype fp32, not {dtype}")
    if max_batch < 1:
        raise UserError(f"--max-batch must be at least 1, got {max_batch}")
    if cfg.cls_token_scales and tuple(cfg.cls_token_scales) != tuple(range(cfg.num_scales)):
        raise UserError(f"this model has class tokens at scales {list(cfg.cls_token_scales)} only; the step graph "
                        f"serves every scale from one class-token table, so export needs class tokens at every "
                        f"scale (0-{cfg.num_scales - 1}) or at none")
    if amp_layers:
        AmpConfig(mode=amp_mode, layers=tuple(amp_layers)).resolve(cfg)   # names the problem if any


def export_model(model, out, amp_layers=None, amp_mode="logit", op_form="function", opset=DEFAULT_OPSET,
                 dtype="fp32", max_batch=DEFAULT_MAX_BATCH, progress=True, quantize=False) -> ExportManifest:
    """Export `model` into the directory `out` (replacing an earlier export there).

    amp_layers: blocks carrying the TopKBiasAttention node; None means the paper's block 14 of
    16 (scaled to the depth) for models with class tokens and none for plain VAR; () exports a
    class-token model without amplification. quantize: int8 dynamic quantisation of the step
    graph's linear layers (export.quantize), for ONNX Runtime on CPU.
    """
    cfg = model.cfg
    if amp_layers is None:
        amp_layers = default_amp_layers(cfg.depth) if cfg.cls_token_scales else ()
    amp_layers = tuple(sorted(set(amp_layers)))
    check_options(cfg, amp_layers, amp_mode, op_form, opset, dtype, max_batch, quantize)
    # A copy, so that casting to fp16 never touches the caller's model.
    dt = DTYPES[dtype]
    export = model if dt == torch.float32 and next(model.parameters()).device.type == "cpu" else \
        copy.deepcopy(model).to("cpu", dt)
    export.eval()
    with staged_directory(out, "an export directory", ExportManifest.describes) as staging:
        graphs = _export_graphs(export, staging, amp_layers, amp_mode, op_form, opset, dt, progress)
        if quantize:
            quantize_step(staging / graphs["step"])
            onnx_files.check(staging / graphs["step"])
        files = {p.name: sha256_of(p) for p in sorted(staging.iterdir())}
        manifest = {
            "model": model_entry(model),
            "patch_nums": list(cfg.patch_nums),
            "amp": {"layers": list(amp_layers), "mode": amp_mode if amp_layers else None,
                    "op_form": op_form if amp_layers else None, "op": f"{DOMAIN}::{OP_NAME}", "op_version": OP_VERSION},
            "opset": opset, "dtype": dtype, "quantization": SCHEME if quantize else None, "max_batch": max_batch,
            "tools": {name: importlib.metadata.version(name) for name in ("hieramp", "torch", "onnx")},
            "graphs": graphs, "files": files,
        }
        ExportManifest.write(staging, manifest)
    return ExportManifest.read(out)


def _export_graphs(model, staging, amp_layers, amp_mode, op_form, opset, dtype, progress) -> dict:
    S = model.cfg.num_scales
    bar = tqdm(graph_names(S), desc="export", unit="graph", disable=not progress)
    for name in bar:
        bar.set_postfix_str(name)
        path = staging / graph_file(name, SUFFIX)
        if name == SAMPLE:
            onnx_files.save(sample_model(model.cfg.vae.vocab_size, opset), path)
        else:
            module, spec, args, trace_spec = traceable(model, name, amp_layers, amp_mode, dtype)
            traced = _trace(module, trace_spec, args, opset, staging.parent)
            if name == STEP and amp_layers:
                _finish_amp_nodes(traced, amp_layers, amp_mode, op_form, opset)
            onnx_files.apply_spec(traced, spec)
            onnx_files.save(traced, path)
        onnx_files.check(path)
    return graph_files(S, SUFFIX)


def _trace(module, spec, args, opset, scratch_parent: Path) -> onnx.ModelProto:
    """TorchScript export (its custom symbolics give the op node directly), loaded back with any
    external data it wrote; the scratch file goes right after."""
    with tempfile.TemporaryDirectory(dir=scratch_parent) as scratch:
        path = Path(scratch) / "graph.onnx"
        with warnings.catch_warnings(), torch.no_grad(), resize_as_matrices():
            warnings.simplefilter("ignore")   # the exporter's deprecation notice and tracer chatter
            torch.onnx.export(
                module, args, str(path), dynamo=False, opset_version=opset, do_constant_folding=True,
                input_names=[t.name for t in spec.inputs], output_names=[t.name for t in spec.outputs],
                dynamic_axes=spec.dynamic_axes(), custom_opsets={DOMAIN: OP_VERSION} if spec.name == STEP else None)
        return onnx.load(str(path))


def _finish_amp_nodes(model: onnx.ModelProto, amp_layers, amp_mode, op_form, opset):
    """Name the op nodes after their blocks (amp.<layer>) and attach the function body."""
    nodes = [n for n in model.graph.node if n.domain == DOMAIN and n.op_type == OP_NAME]
    if len(nodes) != len(amp_layers):
        raise RuntimeError(f"expected {len(amp_layers)} {OP_NAME} nodes, the trace has {len(nodes)}")
    for node, layer in zip(nodes, amp_layers):
        node.name = f"amp.{layer}"
    if op_form == "function":
        model.functions.append(function_proto(amp_mode, opset))
