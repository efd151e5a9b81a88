"""Export directories: manifest, checker, I/O specs, the op nodes, and each graph against torch
(Polygraphy's comparator with an ONNX Runtime runner and a small torch runner)."""
import copy
import json
from collections import OrderedDict

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from polygraphy.backend.base import BaseRunner
from polygraphy.backend.onnxrt import OnnxrtRunner, SessionFromOnnx
from polygraphy.common import TensorMetadata
from polygraphy.comparator import Comparator, DataLoader, SimpleCompareFunc

from hieramp import UserError
from hieramp.export import onnx_files
from hieramp.export.exporter import export_model
from hieramp.export.graphs import FP16_DECODE_TRACE_SIDE, traceable
from hieramp.export.manifest import ExportManifest
from hieramp.model.amp_op import topk_bias_attention
from hieramp.model.bundle import HierAmpModel, ModelSource
from hieramp.model.config import tiny_var
from hieramp.model.kv_cache import KVCache
from hieramp.model.presets import random_model
from hieramp.model.sampling import guide
from hieramp.model.var import VAR, Conditioning


NUMPY_TYPES = {"tensor(float)": np.float32, "tensor(int64)": np.int64}


class TorchRunner(BaseRunner):
    """A Polygraphy runner around a torch function of named numpy inputs (Polygraphy's own
    PytRunner moves everything to CUDA)."""

    def __init__(self, fn, input_metadata, output_names):
        super().__init__(name="torch")
        self.fn, self.meta, self.output_names = fn, input_metadata, output_names

    def get_input_metadata_impl(self):
        return self.meta

    def infer_impl(self, feed_dict):
        with torch.no_grad():
            outputs = self.fn(**{k: torch.from_numpy(np.asarray(v)) for k, v in feed_dict.items()})
        self.inference_time = 0.0
        return OrderedDict((name, out.numpy()) for name, out in zip(self.output_names, outputs))


def check_graph(path, fn, feeds, atol):
    """Compare the graph in ONNX Runtime with `fn` on `feeds` (a list of feed dicts)."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = TensorMetadata()
    for i in session.get_inputs():
        meta.add(i.name, NUMPY_TYPES[i.type], i.shape)
    names = [o.name for o in session.get_outputs()]
    runners = [OnnxrtRunner(SessionFromOnnx(str(path), providers=["CPUExecutionProvider"])), TorchRunner(fn, meta, names)]
    results = Comparator.run(runners, data_loader=feeds)
    assert bool(Comparator.compare_accuracy(results, compare_func=SimpleCompareFunc(atol=atol, rtol=0)))


@pytest.fixture(scope="module")
def exports(tmp_path_factory, tiny_model, tiny_plain_model):
    root = tmp_path_factory.mktemp("exports")
    return {
        "tiny": (tiny_model, export_model(tiny_model, root / "tiny", progress=False)),
        "tiny-plain": (tiny_plain_model, export_model(tiny_plain_model, root / "plain", progress=False)),
        "plugin": (tiny_model, export_model(tiny_model, root / "plugin", amp_layers=(0, 1), amp_mode="weight",
                                            op_form="plugin", opset=17, progress=False)),
    }


def graph_paths(manifest):
    g = manifest.data["graphs"]
    return [manifest.directory / name for name in [g["condition"], g["step"], g["sample"], *g["update"], g["decode"]]]


def test_manifest_records_model_op_and_files(exports):
    model, manifest = exports["tiny"]
    data = json.loads((manifest.directory / "manifest.json").read_text())
    assert data["model"]["fingerprint"] == model.source.fingerprint
    assert data["model"]["config"]["cls_token_scales"] == [0, 1, 2, 3]
    assert data["patch_nums"] == [1, 2, 3, 4]
    assert data["amp"] == {"layers": [1], "mode": "logit", "op_form": "function", "op": "hieramp::TopKBiasAttention",
                           "op_version": 1}
    assert (data["opset"], data["dtype"], data["max_batch"]) == (18, "fp32", 8)
    assert set(data["tools"]) == {"hieramp", "torch", "onnx"}
    assert sorted(data["files"]) == sorted(p.name for p in graph_paths(manifest))
    assert len(manifest.artifact_id) == 12
    manifest.verify_files()
    assert exports["tiny-plain"][1].data["amp"]["layers"] == []


@pytest.mark.parametrize("name", ["tiny", "tiny-plain", "plugin"])
def test_graphs_pass_checker_without_aten(exports, name):
    manifest = exports[name][1]
    for path in graph_paths(manifest):
        onnx_files.check(path)
        model = onnx.load(str(path))
        assert {o.version for o in model.opset_import if o.domain in ("", "ai.onnx")} == {manifest.data["opset"]}
        assert any(n.op_type == "LayerNormalization" for n in model.graph.node) == (path.name in ("step.onnx",))


def test_step_io_spec(exports):
    model, manifest = exports["tiny"]
    cfg = model.cfg
    step = onnx.load(str(manifest.graph("step")))

    def dims(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    inputs = {v.name: dims(v) for v in step.graph.input}
    outputs = {v.name: dims(v) for v in step.graph.output}
    assert list(inputs)[:8] == ["tokens", "block_mods", "head_mod", "scale", "past_len", "beta", "rho", "cfg_t"]
    assert inputs["tokens"] == ["batch2", "n", cfg.embed_dim]
    assert inputs["block_mods"] == ["batch2", cfg.depth, 6, cfg.embed_dim]
    assert inputs["scale"] == inputs["past_len"] == []
    assert inputs["cache_v.1"] == ["batch2", cfg.num_heads, cfg.seq_len + 1, cfg.head_dim]
    assert outputs["logits"] == ["batch", "n", cfg.vae.vocab_size]
    assert list(outputs)[1:] == ["new_k.0", "new_v.0", "new_k.1", "new_v.1"]
    assert outputs["new_k.0"] == ["batch2", cfg.num_heads, "n", cfg.head_dim]
    update = onnx.load(str(manifest.graph("update", 1)))
    assert [dims(v) for v in update.graph.output] == [["batch", 8, 4, 4], ["batch2", 9, cfg.embed_dim]]
    assert len(onnx.load(str(manifest.graph("update", 3))).graph.output) == 1


def test_op_nodes_function_and_plugin_forms(exports):
    step = onnx.load(str(exports["tiny"][1].graph("step")))
    nodes = [n for n in step.graph.node if n.domain == "hieramp"]
    assert [(n.name, n.op_type) for n in nodes] == [("amp.1", "TopKBiasAttention")]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in nodes[0].attribute}
    assert attrs == {"scale": 1.0, "mode": b"logit"}
    assert [(f.domain, f.name) for f in step.functions] == [("hieramp", "TopKBiasAttention")]
    assert {(o.domain, o.version) for o in step.opset_import} >= {("hieramp", 1)}

    plugin = onnx.load(str(exports["plugin"][1].graph("step")))
    nodes = [n for n in plugin.graph.node if n.domain == "hieramp"]
    assert [n.name for n in nodes] == ["amp.0", "amp.1"]
    assert all(onnx.helper.get_attribute_value(a) == b"weight" for n in nodes for a in n.attribute if a.name == "mode")
    assert not plugin.functions

    plain = onnx.load(str(exports["tiny-plain"][1].graph("step")))
    assert not [n for n in plain.graph.node if n.domain == "hieramp"] and not plain.functions


def reference_step(var, amp_layers=()):
    """VAR.step through a KVCache holding the given cache contents, guided: the step graph's contract."""
    cfg = var.cfg

    def step(tokens, block_mods, head_mod, past_len, cfg_t, scale=None, beta=None, rho=None, **caches):
        P, n = int(past_len), tokens.shape[1]
        si = cfg.scale_offsets.index(P)     # plain VAR's graph has no scale input
        cache = KVCache.for_model(cfg, tokens.shape[0], torch.float32, "cpu")
        for layer in range(cfg.depth):
            cache.k[layer].copy_(caches[f"cache_k.{layer}"])
            cache.v[layer].copy_(caches[f"cache_v.{layer}"])
        cond = Conditioning(block_mods=list(block_mods.unbind(1)), head_mod=head_mod, sos=None)
        amp = (lambda q, k, v, s: topk_bias_attention(q, k, v, float(beta), float(rho), s)) if amp_layers else None
        logits = guide(var.step(si, tokens, cond, cache, amp, amp_layers), float(cfg_t))
        new = [t[:, :, P:P + n] for layer in range(cfg.depth) for t in (cache.k[layer], cache.v[layer])]
        return [logits, *new]
    return step


def step_feeds(model, scales):
    cfg = model.cfg
    g = torch.Generator().manual_seed(1)
    cond = model.var.condition(torch.tensor([3, 7]))
    feeds = []
    for si in scales:
        n = cfg.patch_nums[si] ** 2
        feed = {"tokens": cond.sos if si == 0 else torch.randn(4, n, cfg.embed_dim, generator=g),
                "block_mods": torch.stack(cond.block_mods, 1), "head_mod": cond.head_mod,
                "scale": torch.tensor(si), "past_len": torch.tensor(cfg.scale_offsets[si]),
                "beta": torch.tensor(5.0), "rho": torch.tensor(0.5), "cfg_t": torch.tensor(1.5)}
        for layer in range(cfg.depth):
            for kv in "kv":
                feed[f"cache_{kv}.{layer}"] = torch.randn(4, cfg.num_heads, cfg.seq_len + 1, cfg.head_dim, generator=g)
        feeds.append({k: v.detach().numpy() for k, v in feed.items()})
    return feeds


@pytest.mark.parametrize("name", ["tiny", "tiny-plain"])
def test_step_graph_equals_var_step_at_every_scale(exports, name):
    model, manifest = exports[name]
    feeds = step_feeds(model, range(model.cfg.num_scales))
    if name == "tiny-plain":
        for feed in feeds:   # plain VAR's graph has no class-token table and no op
            del feed["scale"], feed["beta"], feed["rho"]
    check_graph(manifest.graph("step"), reference_step(model.var, manifest.amp_layers), feeds, atol=1e-5)


def test_update_graphs_equal_vq_update_with_interpolate(exports):
    model, manifest = exports["tiny"]
    cfg = model.cfg
    for si in range(cfg.num_scales):
        def update(ids, f_hat, si=si):
            f_hat, feats = model.vae.vq_update(si, ids, f_hat)
            return [f_hat] if feats is None else [f_hat, model.var.embed_scale(si + 1, feats)]
        meta = TensorMetadata().add("ids", np.int64, (3, cfg.patch_nums[si] ** 2)).add("f_hat", np.float32, (3, 8, 4, 4))
        loader = DataLoader(seed=si, iterations=2, input_metadata=meta, val_range={"ids": (0, 63), "f_hat": (-2.0, 2.0)})
        check_graph(manifest.graph("update", si), update, loader, atol=1e-5)


def test_condition_and_decode_graphs(exports):
    model, manifest = exports["tiny"]
    meta = TensorMetadata().add("labels", np.int64, (3,))
    check_graph(manifest.graph("condition"),
                lambda labels: (lambda c: [torch.stack(c.block_mods, 1), c.head_mod, c.sos])(model.var.condition(labels)),
                DataLoader(iterations=2, input_metadata=meta, val_range={"labels": (0, 9)}), atol=1e-6)
    meta = TensorMetadata().add("f_hat", np.float32, (2, 8, 4, 4))
    check_graph(manifest.graph("decode"), lambda f_hat: [(model.vae.fhat_to_img(f_hat) + 1) / 2],
                DataLoader(iterations=2, input_metadata=meta), atol=1e-5)


def test_some_class_token_scales_are_refused(tmp_path):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        var = VAR(tiny_var(cls_token_scales=(1, 3)))
    model = HierAmpModel(var, random_model("tiny").vae, ModelSource("some-cls", "a" * 64, "b" * 64))
    with pytest.raises(UserError, match=r"class tokens at scales \[1, 3\] only.*every scale \(0-3\) or at none"):
        export_model(model, tmp_path / "x", progress=False)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("kwargs,message", [
    (dict(opset=16), "opset 16 is not supported: use 17-20"),
    (dict(op_form="tensorrt"), "unknown op form 'tensorrt'"),
    (dict(dtype="bf16"), "unknown dtype 'bf16'"),
    (dict(amp_layers=(5,)), "amplification layer 5 does not exist"),
])
def test_bad_options_are_refused(tiny_model, tmp_path, kwargs, message):
    with pytest.raises(UserError, match=message):
        export_model(tiny_model, tmp_path / "x", progress=False, **kwargs)


def test_plain_model_with_amp_layers_is_refused(tiny_plain_model, tmp_path):
    with pytest.raises(UserError, match="needs a model with class tokens"):
        export_model(tiny_plain_model, tmp_path / "x", amp_layers=(1,), progress=False)


def test_target_that_is_not_an_export_is_refused(tiny_model, tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="exists and is not an export directory"):
        export_model(tiny_model, tmp_path / "x", progress=False)
    assert (tmp_path / "x" / "notes.txt").read_text() == "mine"


def test_failed_export_leaves_nothing_and_keeps_the_old_export(tiny_model, tmp_path, monkeypatch):
    first = export_model(tiny_model, tmp_path / "x", amp_layers=(), progress=False)

    def broken(path):
        raise RuntimeError("disk full")
    monkeypatch.setattr(onnx_files, "check", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        export_model(tiny_model, tmp_path / "x", progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["x"]
    assert ExportManifest.read(tmp_path / "x").artifact_id == first.artifact_id
    monkeypatch.undo()
    second = export_model(tiny_model, tmp_path / "x", progress=False)   # replaces the earlier export
    assert second.amp_layers == (1,) and [p.name for p in tmp_path.iterdir()] == ["x"]


def test_large_weights_go_to_external_data(tiny_model, tmp_path):
    model = onnx.load(str(export_model(tiny_model, tmp_path / "x", progress=False).graph("decode")))
    path = tmp_path / "decode.onnx"
    written = onnx_files.save(model, path, external_data_bytes=0)
    assert [p.name for p in written] == ["decode.onnx", "decode.onnx.data"]
    assert path.stat().st_size < 100_000 < written[1].stat().st_size
    onnx_files.check(path)
    f_hat = np.random.default_rng(0).standard_normal((1, 8, 4, 4)).astype(np.float32)
    ref = ort.InferenceSession(str(tmp_path / "x" / "decode.onnx"), providers=["CPUExecutionProvider"]).run(None, {"f_hat": f_hat})
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"f_hat": f_hat})
    np.testing.assert_array_equal(got[0], ref[0])


def test_fp16_export(tiny_model, tmp_path):
    manifest = export_model(tiny_model, tmp_path / "x", dtype="fp16", progress=False)
    step = onnx.load(str(manifest.graph("step")))
    types = {v.name: v.type.tensor_type.elem_type for v in list(step.graph.input) + list(step.graph.output)}
    assert types["tokens"] == types["cache_k.0"] == types["new_v.1"] == onnx.TensorProto.FLOAT16
    assert types["logits"] == types["beta"] == onnx.TensorProto.FLOAT
    assert next(tiny_model.parameters()).dtype == torch.float32          # the caller's model is untouched
    for path in graph_paths(manifest):
        onnx_files.check(path)


def test_fp16_decoder_is_traced_small_and_pinned_to_the_model_sizes(tiny_model, tmp_path):
    """torch's fp16 convolutions crawl on CPUs, so the fp16 decoder is traced on a small f_hat with
    dynamic spatial axes; the file has the model's static sizes and decodes as torch does."""
    _, _, (example,), trace_spec = traceable(copy.deepcopy(tiny_model).half(), "decode", (), "logit", torch.float16)
    assert example.shape[-1] == FP16_DECODE_TRACE_SIDE < tiny_model.cfg.patch_nums[-1]
    assert trace_spec.dynamic_axes()["f_hat"] == {0: "batch", 2: "side", 3: "side"}
    decode = onnx.load(str(export_model(tiny_model, tmp_path / "x", dtype="fp16", progress=False).graph("decode")))
    dims = {v.name: [d.dim_value or d.dim_param for d in v.type.tensor_type.shape.dim]
            for v in list(decode.graph.input) + list(decode.graph.output)}
    assert dims == {"f_hat": ["batch", 8, 4, 4], "images": ["batch", 3, 8, 8]}
    f_hat = torch.randn(2, 8, 4, 4, generator=torch.Generator().manual_seed(0))
    got = ort.InferenceSession(decode.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"f_hat": f_hat.half().numpy()})[0]
    with torch.no_grad():
        want = (tiny_model.vae.fhat_to_img(f_hat) + 1) / 2
    np.testing.assert_allclose(got, want.numpy(), atol=5e-3)
