"""`hieramp build` with TensorRT-RTX on the CPU: real engines from a tiny export, their profiles,
the precision rules, and the refusals."""
import pytest

from hieramp import UserError
from hieramp.cli import main
from hieramp.engine import build_engines
from hieramp.engine.builder import _precision_flag, batch_buckets
from hieramp.engine.manifest import AHEAD_OF_TIME
from hieramp.export.exporter import export_model
from hieramp.files import sha256_of


def test_build_writes_serialized_engines_and_manifest(rtx, tiny_export, tiny_engines, tiny_model):
    m = tiny_engines
    S = tiny_model.cfg.num_scales
    names = ["condition.engine", "step.engine", "sample.engine", *(f"update_{s}.engine" for s in range(S)), "decode.engine"]
    assert sorted(m.data["files"]) == sorted(names)
    header = rtx.module.Runtime(rtx.module.Logger()).engine_header_size
    for name, digest in m.data["files"].items():
        path = m.directory / name
        assert path.stat().st_size > header and sha256_of(path) == digest
    assert (m.flavour, m.tensorrt_name) == ("tensorrt-rtx", rtx.name)
    assert m.precision == "fp32" and m.batch_sizes == (1, 2)
    assert m.amp_op == "function" and m.amp_layers == (1,) and m.amp_mode == "logit"
    assert m.data["gpu"]["target"] == AHEAD_OF_TIME
    assert m.data["export"]["artifact_id"] == tiny_export.artifact_id
    assert m.export_dir == tiny_export.directory.resolve()


def test_profiles_cover_every_batch_size_and_scale(tiny_engines, tiny_model):
    cfg, profiles = tiny_model.cfg, tiny_engines.data["profiles"]
    assert [p["batch"] for p in profiles["condition"]] == [[1, 1], [2, 2]]
    assert [p["scale"] for p in profiles["condition"]] == [None, None]
    step = profiles["step"]
    assert len(step) == len(tiny_engines.batch_sizes) * cfg.num_scales
    for p in step:
        s, (lo, hi) = p["scale"], p["batch"]
        n = cfg.patch_nums[s] ** 2
        assert p["shapes"]["tokens"] == [[2 * lo, n, cfg.embed_dim], [2 * hi, n, cfg.embed_dim], [2 * hi, n, cfg.embed_dim]]
        assert p["values"] == {"past_len": [cfg.scale_offsets[s]] * 3}
        assert p["shapes"]["cache_k.0"][2] == [2 * hi, cfg.num_heads, cfg.seq_len + 1, cfg.head_dim]
    sample = profiles["sample"][-1]
    assert sample["values"]["top_k"] == [1, cfg.vae.vocab_size, cfg.vae.vocab_size]
    for name in ("update", "decode"):
        graphs = [g for g in profiles if g.split("_")[0] == name]
        assert graphs and all(profiles[g] == [{**profiles[g][0], "batch": [1, 1]}] for g in graphs)
    assert tiny_engines.profile("step", 2, 3) == len(step) - 1
    assert tiny_engines.batch_size_for(1) == 1 and tiny_engines.batch_size_for(2) == 2


def test_batch_buckets():
    assert batch_buckets([64, 1, 8, 8]) == [(1, 1), (2, 8), (9, 64)]
    with pytest.raises(UserError, match="positive"):
        batch_buckets([0, 4])


def test_plugin_form_fails_to_parse_and_leaves_nothing(rtx, tiny_model, tmp_path):
    """TensorRT-RTX has no Python plugins: the bare node is refused with the parser's own message."""
    export = export_model(tiny_model, tmp_path / "plugin", amp_layers=(1,), op_form="plugin", progress=False)
    with pytest.raises(UserError) as err:
        build_engines(export.directory, tmp_path / "engines", flavour="tensorrt-rtx", progress=False)
    message = str(err.value)
    assert "Plugin not found, are the plugin name, version, and namespace correct?" in message
    assert "operator: TopKBiasAttention" in message and "re-export with --amp-op function" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plugin"]


def test_fp16_export_builds_fp16_engines(rtx, tiny_model, tmp_path):
    """TensorRT-RTX has no FP16 builder flag: the export's dtype decides the precision."""
    export = export_model(tiny_model, tmp_path / "fp16", amp_layers=(1,), dtype="fp16", progress=False)
    m = build_engines(export.directory, tmp_path / "engines", batch_sizes=[1], flavour="tensorrt-rtx", progress=False)
    assert m.precision == "fp16" and m.batch_sizes == (1,) and len(m.data["profiles"]["step"]) == 4


def test_precision_rules(rtx):
    assert _precision_flag(rtx, "fp32", "fp32") is None
    assert _precision_flag(rtx, "fp16", "fp16") is None                     # the ONNX types say it
    with pytest.raises(UserError, match="takes precision from the ONNX types.*re-export with --dtype fp16"):
        _precision_flag(rtx, "fp16", "fp32")
    with pytest.raises(UserError, match="exports have no bf16"):
        _precision_flag(rtx, "bf16", "fp32")
    with pytest.raises(UserError, match="the export is fp16, so its engines cannot be fp32"):
        _precision_flag(rtx, "fp32", "fp16")
    with pytest.raises(UserError, match="unknown precision"):
        _precision_flag(rtx, "int8", "fp32")


def test_refusals_print_one_line(rtx, tiny_export, tmp_path, capsys):
    export = str(tiny_export.directory)
    cases = [
        ([str(tmp_path / "missing"), "--out", str(tmp_path / "e")], "does not exist"),
        ([export, "--out", str(tmp_path / "e"), "--flavour", "tensorrt-rtx", "--timing-cache", str(tmp_path / "t")],
         "has no timing cache"),
        ([export, "--out", str(tmp_path / "e"), "--flavour", "tensorrt-rtx", "--batch-sizes", "2,x"],
         "cannot read '2,x'"),
    ]
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    cases.append(([export, "--out", str(tmp_path / "taken"), "--flavour", "tensorrt-rtx"], "is not an engine directory"))
    for argv, message in cases:
        assert main(["build", *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "e").exists()
