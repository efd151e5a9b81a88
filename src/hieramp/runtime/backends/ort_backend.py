"""The ONNX Runtime backend: runs the graphs of an export directory (`hieramp export`).

CPU execution provider; with onnxruntime-gpu and a CUDA device, the CUDA provider with I/O
binding on torch CUDA tensors, so caches, logits and features never leave the device. The CUDA
path cannot be tested on a CPU-only machine and is kept to `_Graph._run_bound`.
"""
import numpy as np
import onnx
import onnx.inliner
import onnxruntime as ort
import torch

from ...errors import UserError
from ...export.amp_function import INDICATOR
from ...export.exporter import DTYPES
from ...export.graphs import (BATCH, BATCH2, BLOCK_MODS, CONDITION, DECODE, F_HAT, HEAD_MOD, IDS, LABELS, LOGITS, NOISE,
                              PAST_LEN, SAMPLE, SCALE, STEP, TOKENS, TOP_K, TOP_P, UPDATE, cache_feeds, guidance_rows,
                              step_scalars, write_new_keys)
from ...export.manifest import ExportManifest, check_amp_plan
from ...export.sample_graph import candidates
from .base import Backend

ORT_TYPES = {"tensor(float)": torch.float32, "tensor(float16)": torch.float16, "tensor(int64)": torch.int64}
NUMPY_TYPES = {torch.float32: np.float32, torch.float16: np.float16, torch.int64: np.int64}


class _Graph:
    """One InferenceSession; feeds and results are torch tensors on the backend's device."""

    def __init__(self, model, path, options, device: torch.device):
        self.device = device
        providers = ["CUDAExecutionProvider"] if device.type == "cuda" else ["CPUExecutionProvider"]
        provider_options = [{"device_id": device.index or 0}] if device.type == "cuda" else None
        try:
            self.session = ort.InferenceSession(model, options, providers=providers, provider_options=provider_options)
        except Exception as err:  # onnxruntime raises its own types for bad protobufs and graphs
            raise UserError(f"cannot load {path} ({str(err).splitlines()[0]}): re-run `hieramp export`") from None
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.outputs = self.session.get_outputs()

    def __call__(self, feeds: dict):
        """Feeds by graph input name (extra ones are ignored); the outputs in graph order."""
        feeds = {name: value for name, value in feeds.items() if name in self.inputs}
        if self.device.type != "cuda":
            arrays = {name: np.ascontiguousarray(v.numpy()) if isinstance(v, torch.Tensor) else v for name, v in feeds.items()}
            return [torch.from_numpy(r) for r in self.session.run([o.name for o in self.outputs], arrays)]
        return self._run_bound(feeds)

    def _run_bound(self, feeds):
        """I/O binding on torch CUDA tensors; numpy scalars stay on the host."""
        binding = self.session.io_binding()
        dims = {}
        for info in self.session.get_inputs():
            value = feeds[info.name]
            if isinstance(value, np.ndarray):
                binding.bind_cpu_input(info.name, value)
                continue
            value = feeds[info.name] = value.contiguous()
            dims.update({d: size for d, size in zip(info.shape, value.shape) if isinstance(d, str)})
            binding.bind_input(info.name, "cuda", self.device.index or 0, NUMPY_TYPES[value.dtype], tuple(value.shape), value.data_ptr())
        # Symbolic output dims: batch2 is twice batch, by the export's design.
        dims.setdefault(BATCH2, 2 * dims.get(BATCH, 0))
        dims.setdefault(BATCH, dims[BATCH2] // 2)
        results = []
        for info in self.outputs:
            if not info.shape or any(not isinstance(d, int) and d not in dims for d in info.shape):
                binding.bind_output(info.name, "cuda")    # shape unknown up front: ONNX Runtime allocates it
                results.append(None)
                continue
            shape = tuple(dims[d] if isinstance(d, str) else d for d in info.shape)
            out = torch.empty(shape, dtype=ORT_TYPES[info.type], device=self.device)
            binding.bind_output(info.name, "cuda", self.device.index or 0, NUMPY_TYPES[out.dtype], shape, out.data_ptr())
            results.append(out)
        self.session.run_with_iobinding(binding)
        allocated = binding.get_outputs()
        return [r if r is not None else torch.from_numpy(allocated[i].numpy()).to(self.device) for i, r in enumerate(results)]


def _scalar(value, dtype):
    return np.array(value, dtype=dtype)


class OrtBackend(Backend):
    name = "onnxruntime"

    @classmethod
    def unavailable(cls, device):
        device = torch.device(device)
        if device.type not in ("cpu", "cuda"):
            return f"the onnxruntime backend runs on cpu or cuda, not {device}"
        if device.type == "cuda" and "CUDAExecutionProvider" not in ort.get_available_providers():
            return (f"device {device} needs onnxruntime-gpu (CUDAExecutionProvider); this onnxruntime has "
                    f"{', '.join(ort.get_available_providers())}: install onnxruntime-gpu or use --device cpu")
        return None

    def __init__(self, model, device="cpu", export_dir=None, threads=None, precision=None):
        """`threads`: intra-op threads (default: ONNX Runtime's choice). `precision`: refuse an
        export of another dtype (None: run whatever it holds)."""
        if export_dir is None:
            raise UserError("the onnxruntime backend runs an export: pass export_dir (made by `hieramp export`)")
        manifest = ExportManifest.read(export_dir)
        manifest.check_model(model)
        if manifest.op_form == "plugin":
            raise UserError(f"export {manifest.directory} holds the bare {manifest.data['amp']['op']} node for the "
                            f"TensorRT plugin (--amp-op plugin), which ONNX Runtime cannot run: "
                            f"re-export with --amp-op function")
        if precision is not None and precision != manifest.dtype:
            raise UserError(f"export {manifest.directory} is {manifest.dtype}, this run asks for {precision}: pass "
                            f"--precision {manifest.dtype}, or re-export with --dtype {precision}")
        manifest.verify_files()
        reason = self.unavailable(device)
        if reason is not None:
            raise UserError(reason)
        super().__init__(model.cfg, device, DTYPES[manifest.dtype])
        self.manifest, self.artifact_id = manifest, manifest.artifact_id
        self.precision = manifest.precision
        self.threads = threads

        def load(name, scale=None):
            path = manifest.graph(name, scale)
            return _Graph(str(path), path, self._session_options(), self.device)

        self.condition_graph = load(CONDITION)
        self.step_graph = load(STEP)
        self.sample_graph = load(SAMPLE)
        self.update_graphs = [load(UPDATE, s) for s in range(self.cfg.num_scales)]
        self.decode_graph = load(DECODE)
        self.record_amp = False

    def _session_options(self):
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3   # errors only: fp16 graphs on CPU warn about every op without an fp16 kernel
        if self.threads:
            options.intra_op_num_threads = self.threads
        return options

    def record_amp_sets(self) -> bool:
        """The step graph is reloaded with its op functions inlined (as ONNX Runtime does anyway)
        and each node's indicator as an extra output `amp_indicator.<layer>`. An export without
        op nodes has no sets to record."""
        if not self.manifest.amp_layers or self.record_amp:
            return self.record_amp
        path = self.manifest.graph(STEP)
        model = onnx.inliner.inline_local_functions(onnx.load(str(path), load_external_data=False))
        found = [o for node in model.graph.node for o in node.output if o.startswith(INDICATOR)]
        if len(found) != len(self.manifest.amp_layers):
            raise RuntimeError(f"expected {len(self.manifest.amp_layers)} indicators in {path}, found {found}")
        for name, layer in zip(found, self.manifest.amp_layers):
            model.graph.node.append(onnx.helper.make_node("Identity", [name], [f"amp_indicator.{layer}"]))
            model.graph.output.append(onnx.helper.make_tensor_value_info(f"amp_indicator.{layer}", onnx.TensorProto.FLOAT, None))
        options = self._session_options()
        # Weights in external data stay where they are: the session reads them from the export.
        options.add_session_config_entry("session.model_external_initializers_file_folder_path", str(path.parent))
        self.step_graph = _Graph(model.SerializeToString(), path, options, self.device)
        self.record_amp = True
        return True

    # ----- the steps of the scale loop ------------------------------------------------------

    def check(self, batch_size, plan):
        check_amp_plan(self.manifest, plan, f"export {self.manifest.directory}", "re-export")

    def begin(self, labels_B, plan):
        self.check(len(labels_B), plan)
        self.cache = self.cache_for(len(labels_B))
        labels = torch.as_tensor(labels_B, dtype=torch.int64).to(self.device)
        self.block_mods, self.head_mod, self.sos = self.condition_graph({LABELS: labels})
        self.plan = plan
        self.amp_indicators = []

    def step(self, si, feats, beta, rho, t):
        """`feats` is the previous update's TOKENS output: the scale's embedded input."""
        P, n = self.cfg.scale_offsets[si], self.cfg.patch_nums[si] ** 2
        scalars = step_scalars(self.plan, self.manifest.amp_mode, si, n, beta, rho, t)
        logits, *rest = self.step_graph({
            TOKENS: self.sos if si == 0 else feats, BLOCK_MODS: self.block_mods, HEAD_MOD: self.head_mod,
            SCALE: _scalar(si, np.int64), PAST_LEN: _scalar(P, np.int64),
            **{name: _scalar(value, np.float32) for name, value in scalars.items()}, **cache_feeds(self.cache)})
        write_new_keys(self.cache, P, rest[:2 * self.cfg.depth])
        if self.record_amp:
            self.amp_indicators.append(dict(zip(self.manifest.amp_layers, rest[2 * self.cfg.depth:])))
        return logits                                                                    # (B, n, V)

    def sample(self, logits, noise, top_k, top_p):
        K = candidates(top_k, self.cfg.vae.vocab_size)
        return self.sample_graph({LOGITS: logits, NOISE: noise, TOP_K: _scalar(K, np.int64),
                                  TOP_P: _scalar(top_p, np.float32)})[0]

    # The update and the decoder run one image at a time, as in the torch backend: convolution
    # algorithms may depend on the batch size, and an image must not depend on its neighbours.
    def update(self, si, ids, f_hat):
        parts = [self.update_graphs[si]({IDS: ids[i:i + 1], F_HAT: f_hat[i:i + 1]}) for i in range(len(ids))]
        f_hat = torch.cat([p[0] for p in parts])
        if len(parts[0]) == 1:
            return f_hat, None
        return f_hat, guidance_rows(torch.stack([p[1] for p in parts]))                 # (2B, n', C)

    def decode(self, f_hat):
        return torch.cat([self.decode_graph({F_HAT: f_hat[i:i + 1]})[0] for i in range(len(f_hat))])
