"""`build_engines`: the ONNX graphs of an export -> serialized TensorRT(-RTX) engines and manifest.json.

One engine per graph, so the weights are stored once; the graphs keep their dynamic axes and the
optimization profiles pin them per batch bucket and, for the step and sample graphs, per scale
(n and the past length P are fixed within a profile, so every scale gets kernels tuned for its
shapes and its own execution context at run time). The update and decode graphs run one image
at a time, as in the other backends, and get one batch-1 profile. A DiT export has one graph,
the denoiser step, built with one profile per batch bucket.

Precision: fp32 builds clear TF32 (exact float32, for parity with the reference). fp16/bf16 on
an fp32 export need the builder's FP16/BF16 flags, which TensorRT has and TensorRT-RTX does not:
TensorRT-RTX takes precision from the ONNX types, so an fp16 engine needs an fp16 export.
"""
import importlib.metadata
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

from tqdm import tqdm

from .. import trt_import
from ..errors import UserError
from ..export.amp_function import OP_NAME
from ..export.dit import STEP_NAME, DiTExportManifest
from ..export.graphs import (BATCH, BATCH2, EVERY_SCALE, N, PAST_LEN, PER_IMAGE, STEP, TOP_K, graph_file, graph_files,
                              graph_kind, graph_names)
from ..export.manifest import ExportManifest
from ..export.sample_graph import TOPK_LIMIT, candidates
from ..files import sha256_of, staged_directory, write_atomic
from ..model.sampling import SamplingParams
from ..trt_import import TENSORRT, TensorRT
from .manifest import EngineManifest, gpu_entry

PRECISIONS = ("fp32", "fp16", "bf16")
SUFFIX = ".engine"                # of each graph's engine file


@dataclass(frozen=True)
class Profile:
    batch: tuple                  # (lo, hi): the batch sizes this profile serves
    scale: Optional[int]          # the scale it serves (step and sample graphs), else None
    shapes: dict                  # input -> (min, opt, max) dims
    values: dict                  # shape-tensor input -> (min, opt, max) value


def batch_buckets(batch_sizes) -> list:
    """[1, 8, 64] -> [(1, 1), (2, 8), (9, 64)]: each batch size serves the sizes above the previous one."""
    sizes = sorted(set(batch_sizes))
    if not sizes or sizes[0] < 1:
        raise UserError(f"batch sizes must be positive integers, got {list(batch_sizes)}")
    return [(lo + 1, hi) for lo, hi in zip([0, *sizes], sizes)]


def graph_profiles(graph: str, inputs: list, patch_nums, vocab: int, batch_sizes) -> list:
    """Profiles of one graph: per batch bucket and, for the graphs that serve every scale, per
    scale; one batch-1 profile for the per-image graphs. `inputs`: (name, dims, dim names, is
    shape tensor) per network input. DiT's step (no patch_nums) gets one profile per bucket."""
    kind, _ = graph_kind(graph)
    buckets = [(1, 1)] if kind in PER_IMAGE else batch_buckets(batch_sizes)
    scales = range(len(patch_nums)) if patch_nums and kind in EVERY_SCALE else [None]
    profiles = []
    for lo, hi in buckets:
        for scale in scales:
            n = None if scale is None else patch_nums[scale] ** 2
            P = None if scale is None else sum(p * p for p in patch_nums[:scale])
            axes = {BATCH: (lo, hi, hi), BATCH2: (2 * lo, 2 * hi, 2 * hi), N: (n, n, n)}
            known = {PAST_LEN: (P, P, P)}                                  # the values of VAR's shape tensors
            if vocab is not None:
                known[TOP_K] = (1, candidates(SamplingParams().top_k, vocab, TOPK_LIMIT), candidates(0, vocab, TOPK_LIMIT))
            shapes, values = {}, {}
            for name, dims, dim_names, is_shape_tensor in inputs:
                if is_shape_tensor:
                    values[name] = known[name]
                elif any(d < 0 for d in dims):
                    ranges = [axes[dim_name] if d < 0 else (d, d, d) for d, dim_name in zip(dims, dim_names)]
                    shapes[name] = tuple(tuple(r[i] for r in ranges) for i in range(3))
            profiles.append(Profile((lo, hi), scale, shapes, values))
    return profiles


def build_engines(export_dir, out, precision: str = None, batch_sizes=None, timing_cache=None, flavour=None,
                  progress=True) -> EngineManifest:
    """Build every graph of the export in `export_dir` into the engine directory `out` (replacing
    an earlier build there). precision defaults to the export's dtype, batch sizes to (1, the
    export's max batch)."""
    dit = DiTExportManifest.describes(export_dir)
    export = (DiTExportManifest if dit else ExportManifest).read(export_dir)
    export.verify_files()
    if export.quantization:
        raise UserError(f"export {export.directory} is quantised for ONNX Runtime ({export.quantization}); TensorRT "
                        f"builds from an unquantised export: re-export without --quantize")
    tensorrt = trt_import.load(flavour)
    precision = precision or export.dtype
    batch_sizes = sorted(set(batch_sizes or (1, export.max_batch)))
    batch_buckets(batch_sizes)                              # refuses sizes below 1 before any work
    flag = _precision_flag(tensorrt, precision, export.dtype)
    if timing_cache is not None and tensorrt.flavour != TENSORRT:
        raise UserError(f"--timing-cache needs TensorRT: {tensorrt.name} has no timing cache (its calls are no-ops), "
                        f"drop the option")
    gpu = gpu_entry(tensorrt)
    plugin = not dit and _plugin_override(tensorrt, export)       # DiT's graph has no custom op
    started = time.monotonic()
    with staged_directory(out, "an engine directory", EngineManifest.describes) as staging:
        builder = _Builder(tensorrt, export, precision, flag, batch_sizes, timing_cache, plugin)
        engines, profiles, amp_op = builder.build_all(staging, progress)
        manifest = {
            "export": {"directory": str(export.directory.resolve()), "artifact_id": export.artifact_id,
                       "backbone": "dit" if dit else "var", "model": export.data["model"], "dtype": export.dtype,
                       "amp": export.data["amp"], "patch_nums": None if dit else list(export.patch_nums)},
            "tensorrt": {"flavour": tensorrt.flavour, "version": tensorrt.version, "name": tensorrt.name},
            "precision": precision, "batch_sizes": batch_sizes, "amp_op": amp_op, "gpu": gpu,
            "profiles": profiles, "engines": engines,
            "files": {p.name: sha256_of(p) for p in sorted(staging.iterdir())},
            "build": {"seconds": round(time.monotonic() - started, 1),
                      "timing_cache": str(Path(timing_cache).resolve()) if timing_cache else None,
                      "tools": {name: importlib.metadata.version(name) for name in ("hieramp", "torch")}},
        }
        EngineManifest.write(staging, manifest)
    return EngineManifest.read(out)


def _precision_flag(tensorrt: TensorRT, precision: str, export_dtype: str):
    """The builder flag that lets layers run at `precision` (None: the ONNX types already say it)."""
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if precision == export_dtype:
        return getattr(tensorrt.module.BuilderFlag, precision.upper(), None) if precision != "fp32" else None
    if export_dtype != "fp32":
        raise UserError(f"the export is {export_dtype}, so its engines cannot be {precision}: build with "
                        f"--precision {export_dtype}, or re-export with --dtype fp32")
    flag = getattr(tensorrt.module.BuilderFlag, precision.upper(), None)
    if flag is None:
        fix = "re-export with --dtype fp16" if precision == "fp16" else \
            "exports have no bf16: build fp16 from an --dtype fp16 export, or use TensorRT for bf16"
        raise UserError(f"{tensorrt.name} takes precision from the ONNX types (it has no {precision.upper()} builder "
                        f"flag), and this export is fp32: {fix}")
    return flag


def _plugin_override(tensorrt: TensorRT, export: ExportManifest) -> bool:
    """Whether the parser should take the registered hieramp::TopKBiasAttention plugin for the
    op nodes (TensorRT's ENABLE_PLUGIN_OVERRIDE; without it a local function of the same name wins)."""
    if tensorrt.flavour != TENSORRT or not export.amp_layers:
        return False
    from ..plugins.trt_plugin import register_if_available
    return register_if_available()


class _Builder:
    """Parses and builds the graphs of one export with one TensorRT, sharing a timing cache."""

    def __init__(self, tensorrt: TensorRT, export: ExportManifest, precision, flag, batch_sizes, timing_cache, plugin):
        self.trt, self.export, self.precision, self.flag = tensorrt.module, export, precision, flag
        self.tensorrt, self.batch_sizes, self.plugin = tensorrt, batch_sizes, plugin
        self.dit = isinstance(export, DiTExportManifest)
        self.patch_nums, self.vocab = (None, None) if self.dit else (export.patch_nums, export.vocab_size)
        self.log = _logger(self.trt)
        self.builder = self.trt.Builder(self.log)
        self.timing_cache_path = Path(timing_cache) if timing_cache else None
        self.timing_cache = None
        if self.timing_cache_path is not None:
            config = self.builder.create_builder_config()
            data = self.timing_cache_path.read_bytes() if self.timing_cache_path.is_file() else b""
            self.timing_cache = config.create_timing_cache(data)

    def graphs(self) -> dict:
        """Graph name -> its ONNX file, in build order."""
        if self.dit:
            return {STEP: self.export.graph(STEP)}
        return {name: self.export.graph(*graph_kind(name)) for name in graph_names(len(self.patch_nums))}

    def engine_file(self, name: str) -> str:
        return graph_file(STEP_NAME if self.dit else name, SUFFIX)

    def engine_files(self) -> dict:
        """The manifest's "engines" entry (`EngineManifest.engine` reads it)."""
        if self.dit:
            return {STEP: self.engine_file(STEP)}
        return graph_files(len(self.patch_nums), SUFFIX)

    def build_all(self, staging: Path, progress: bool):
        profiles, amp_op = {}, None
        bar = tqdm(self.graphs().items(), desc="build", unit="engine", disable=not progress)
        for name, onnx_file in bar:
            bar.set_postfix_str(name)
            network, parser, plugin_layers = self._parse(onnx_file)
            inputs = [(t.name, tuple(t.shape), [t.get_dimension_name(i) for i in range(len(t.shape))], t.is_shape_tensor)
                      for t in (network.get_input(i) for i in range(network.num_inputs))]
            graph_profile = graph_profiles(name, inputs, self.patch_nums, self.vocab, self.batch_sizes)
            plan = self._build(network, graph_profile, name)
            del network, parser          # the parser owns the weights the network points to: both go together
            with open(staging / self.engine_file(name), "wb") as f:
                f.write(plan)
            profiles[name] = [asdict(p) for p in graph_profile]
            if name == STEP and not self.dit:
                amp_op = self._amp_form(plugin_layers)
        if self.timing_cache is not None:
            write_atomic(self.timing_cache_path, bytes(self.timing_cache.serialize()))
        return self.engine_files(), profiles, amp_op

    def _amp_form(self, plugin_layers: int):
        layers = self.export.amp_layers
        if plugin_layers and plugin_layers != len(layers):
            raise RuntimeError(f"step graph: {plugin_layers} plugin layers for {len(layers)} {OP_NAME} nodes")
        return None if not layers else "plugin" if plugin_layers else "function"

    def _parse(self, path: Path):
        trt = self.trt
        network = self.builder.create_network(0)
        parser = trt.OnnxParser(network, self.log)
        if self.plugin:
            parser.set_flag(trt.OnnxParserFlag.ENABLE_PLUGIN_OVERRIDE)
        if not parser.parse_from_file(str(path)):
            errors = [parser.get_error(i) for i in range(parser.num_errors)]
            raise UserError(self._parse_failure(path, errors))
        plugin_layers = sum(network.get_layer(i).type == trt.LayerType.PLUGIN_V3 for i in range(network.num_layers))
        return network, parser, plugin_layers

    def _parse_failure(self, path: Path, errors) -> str:
        first = str(errors[0]) if errors else "; ".join(self.log.errors[-3:]) or "no details"
        if any(e.node_operator() == OP_NAME for e in errors):
            if self.tensorrt.flavour == TENSORRT:
                from ..plugins.trt_plugin import plugin_support
                why = plugin_support() or "the plugin did not load"
            else:
                why = f"{self.tensorrt.name} has no Python plugins"
            return (f"{path} holds {OP_NAME} nodes for the TensorRT plugin (--amp-op plugin) and no plugin is "
                    f"registered ({why}); {self.tensorrt.name} says: {first}; re-export with --amp-op function, whose "
                    f"function body every TensorRT parses")
        return f"{self.tensorrt.name} cannot parse {path}: {first}; re-export it or use --backend onnxruntime"

    def _build(self, network, graph_profile, name: str):
        trt = self.trt
        config = self.builder.create_builder_config()
        if self.precision == "fp32":
            config.clear_flag(trt.BuilderFlag.TF32)
        if self.flag is not None:
            config.set_flag(self.flag)
        if self.tensorrt.builds_without_gpu:
            # TensorRT-RTX: engines must use the memory we give them to be captured in CUDA graphs.
            config.set_flag(trt.BuilderFlag.REQUIRE_USER_ALLOCATION)
        if self.timing_cache is not None:
            config.set_timing_cache(self.timing_cache, ignore_mismatch=False)
        for p in graph_profile:
            profile = self.builder.create_optimization_profile()
            for input_name, (lo, opt, hi) in p.shapes.items():
                profile.set_shape(input_name, lo, opt, hi)
            for input_name, (lo, opt, hi) in p.values.items():
                profile.set_shape_input(input_name, [lo], [opt], [hi])
            config.add_optimization_profile(profile)
        plan = self.builder.build_serialized_network(network, config)
        if plan is None:
            raise RuntimeError(f"{self.tensorrt.name} could not build {name}: {'; '.join(self.log.errors[-3:])}")
        return plan


def _logger(trt):
    """A TensorRT logger that keeps errors (for messages) and prints nothing."""

    class Log(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)
            self.errors = []

        def log(self, severity, msg):
            if severity <= trt.ILogger.Severity.ERROR:
                self.errors.append(msg)

    return Log()
