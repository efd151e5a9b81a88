"""The graph I/O contract: names, files, step scalars, write-back and guidance rows."""
import numpy as np
import torch

from hieramp.export.amp_function import graph_rho
from hieramp.export.graphs import ConditionGraph, DecodeGraph, StepGraph, UpdateGraph, cache_feeds, cache_names, \
    graph_files, graph_kind, graph_names, guidance_rows, step_scalars, write_new_keys
from hieramp.export.sample_graph import sample_model
from hieramp.model.amp_config import AmpConfig
from hieramp.model.kv_cache import KVCache


def test_graph_names_kinds_and_files():
    assert graph_names(3) == ["condition", "step", "sample", "update_0", "update_1", "update_2", "decode"]
    assert [graph_kind(name) for name in ("step", "update_2")] == [("step", None), ("update", 2)]
    assert graph_files(2, ".engine") == {"condition": "condition.engine", "step": "step.engine",
                                         "sample": "sample.engine", "update": ["update_0.engine", "update_1.engine"],
                                         "decode": "decode.engine"}


def test_tensor_names_are_the_export_format(tiny_model):
    """The names inside every export's files and engines' bindings: spelled out here, so that
    renaming a constant in graphs.py fails a test instead of invalidating existing exports."""
    cfg, S = tiny_model.cfg, tiny_model.cfg.num_scales

    def io(spec):
        return [t.name for t in spec.inputs], [t.name for t in spec.outputs]

    assert io(ConditionGraph.spec(cfg, torch.float32)) == (["labels"], ["block_mods", "head_mod", "sos"])
    step_in, step_out = io(StepGraph.spec(cfg, torch.float32))
    assert step_in[:8] == ["tokens", "block_mods", "head_mod", "scale", "past_len", "beta", "rho", "cfg_t"]
    assert step_in[8:] == cache_names(cfg.depth, "cache") and step_out == ["logits", *cache_names(cfg.depth, "new")]
    assert io(UpdateGraph.spec(cfg, torch.float32, 0)) == (["ids", "f_hat"], ["f_hat_out", "tokens"])
    assert io(UpdateGraph.spec(cfg, torch.float32, S - 1)) == (["ids", "f_hat"], ["f_hat_out"])
    assert io(DecodeGraph.spec(cfg, torch.float32)) == (["f_hat"], ["images"])
    assert StepGraph.spec(cfg, torch.float32).dynamic_axes()["logits"] == {0: "batch", 1: "n"}
    sample = sample_model(cfg.vae.vocab_size, 17).graph
    assert [t.name for t in sample.input] == ["logits", "noise", "top_k", "top_p"]
    assert [t.name for t in sample.output] == ["ids"]


def test_step_scalars_neutral_beta_outside_the_plan(tiny_model):
    plan = AmpConfig(mode="weight", layers=(1,), scales=(2,)).resolve(tiny_model.cfg)
    assert step_scalars(plan, "weight", 2, 9, 5.0, 0.5, 1.5) == {"beta": 5.0, "rho": graph_rho(0.5, 9), "cfg_t": 1.5}
    assert step_scalars(plan, "weight", 1, 4, 5.0, 0.5, 0.0)["beta"] == 1.0
    assert step_scalars(None, None, 1, 4, 5.0, 0.5, 0.0)["beta"] == 0.0
    assert all(isinstance(v, np.float32) for v in step_scalars(None, None, 1, 4, 5.0, 0.53, 0.0).values())


def test_cache_feeds_and_write_back():
    cache = KVCache(depth=2, batch=2, num_heads=1, seq_len=5, head_dim=3, dtype=torch.float32, device="cpu")
    feeds = cache_feeds(cache)
    assert list(feeds) == cache_names(2, "cache") == ["cache_k.0", "cache_v.0", "cache_k.1", "cache_v.1"]
    assert feeds["cache_v.1"] is cache.v[1]
    new = [torch.full((2, 1, 2, 3), float(i + 1)) for i in range(4)]
    write_new_keys(cache, 3, new)
    assert torch.equal(cache.v[1][:, :, 3:5], new[3]) and cache.k[0][:, :, :3].abs().sum() == 0


def test_guidance_rows_all_conditional_rows_first():
    per_image = torch.arange(3 * 2 * 4 * 1.0).view(3, 2, 4, 1)                 # (B, 2, n, C)
    rows = guidance_rows(per_image)
    assert torch.equal(rows, torch.cat([per_image[:, 0], per_image[:, 1]]))
    out = torch.empty(6, 4, 1)
    assert guidance_rows(per_image, out=out) is out and torch.equal(out, rows)
