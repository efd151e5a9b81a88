"""The onnxruntime backend against the torch reference, and its refusals."""
import json
import shutil

import numpy as np
import pytest
import torch

from hieramp import AmpConfig, Generator, UserError
from hieramp.cli import main
from hieramp.export import onnx_files
from hieramp.export.exporter import export_model
from hieramp.files import sha256_of

LABELS = [1, 5, 9]
ARMS = {   # export options, amplification at run time
    "logit-1-layer": ("tiny", dict(amp_layers=(1,)), AmpConfig(layers=(1,))),
    "weight-2-layers": ("tiny", dict(amp_layers=(0, 1), amp_mode="weight"),
                        AmpConfig(mode="weight", layers=(0, 1), beta=(2.0, 3.0, 4.0), rho=0.3)),
    "plain": ("tiny-plain", {}, None),
}


@pytest.fixture(scope="module")
def models(tiny_model, tiny_plain_model):
    return {"tiny": tiny_model, "tiny-plain": tiny_plain_model}


@pytest.fixture(scope="module")
def exports(tmp_path_factory, models):
    root = tmp_path_factory.mktemp("ort")
    return {name: export_model(models[model], root / name, progress=False, **options)
            for name, (model, options, _) in ARMS.items()}


def assert_same_generation(model, export_dir, amp, labels=LABELS, seed=4):
    ref = Generator(model).run(labels, seed=seed, amp=amp, return_logits=True)
    ort = Generator(model, backend="onnxruntime", export_dir=export_dir)
    forced = ort.run(labels, seed=seed, amp=amp, forced_tokens=ref.tokens, return_logits=True)
    for si, (a, b) in enumerate(zip(forced.logits, ref.logits)):
        assert a.shape == b.shape
        assert float((a - b).abs().max()) <= 1e-4, f"scale {si}"
    free = ort.run(labels, seed=seed, amp=amp)
    for a, b in zip(free.tokens, ref.tokens):
        assert torch.equal(a, b)
    torch.testing.assert_close(free.images, ref.images, atol=1e-5, rtol=0)


@pytest.mark.parametrize("arm", list(ARMS))
def test_generation_equals_reference(models, exports, arm):
    model, _, amp = ARMS[arm]
    assert_same_generation(models[model], exports[arm].directory, amp)


def test_amplification_off_and_partial_scales(models, exports):
    model, directory = models["tiny"], exports["logit-1-layer"].directory
    assert_same_generation(model, directory, None)                                      # neutral beta everywhere
    assert_same_generation(model, directory, AmpConfig(layers=(1,), scales=(2,), beta=8.0, rho=0.6))


def test_batch_of_one_and_export_without_op(models, tmp_path):
    manifest = export_model(models["tiny"], tmp_path / "none", amp_layers=(), progress=False)
    assert_same_generation(models["tiny"], manifest.directory, None, labels=[3])


def test_batch_size_does_not_change_images(models, exports):
    gen = ort(models["tiny"], exports["logit-1-layer"].directory)
    amp = ARMS["logit-1-layer"][2]
    labels, indices = [1, 5, 1, 9], [0, 0, 1, 0]
    together = gen.run(labels, seed=3, amp=amp, indices=indices)
    alone = [gen.run([c], seed=3, amp=amp, indices=[i]) for c, i in zip(labels, indices)]
    assert torch.equal(together.images, torch.cat([r.images for r in alone]))
    for si, tokens in enumerate(together.tokens):
        assert torch.equal(tokens, torch.cat([r.tokens[si] for r in alone]))


def test_caches_allocated_once_per_batch_size(models, exports):
    gen = Generator(models["tiny"], backend="onnxruntime", export_dir=exports["logit-1-layer"].directory)
    amp = ARMS["logit-1-layer"][2]
    gen.run([1, 2], amp=amp)
    first = gen.backend._caches[2].k[0]
    gen.run([3, 4], amp=amp)
    gen.run([5], amp=amp)
    assert sorted(gen.backend._caches) == [1, 2] and gen.backend._caches[2].k[0] is first
    assert first.shape == (4, 2, models["tiny"].cfg.seq_len + 1, 16)


def test_artifact_id_identifies_the_export(models, exports):
    manifest = exports["logit-1-layer"]
    gen = Generator(models["tiny"], backend="onnxruntime", export_dir=manifest.directory)
    assert gen.backend.artifact_id == manifest.artifact_id and len(manifest.artifact_id) == 12
    assert getattr(Generator(models["tiny"]).backend, "artifact_id", None) is None


def test_recorded_amplified_sets(models, exports):
    gen = Generator(models["tiny"], backend="onnxruntime", export_dir=exports["weight-2-layers"].directory)
    gen.backend.record_amp_sets()
    amp = ARMS["weight-2-layers"][2]
    gen.run(LABELS, amp=amp)
    cfg = models["tiny"].cfg
    sets = gen.backend.amp_indicators
    assert len(sets) == cfg.num_scales and all(sorted(s) == [0, 1] for s in sets)
    for si, per_layer in enumerate(sets):
        n = cfg.patch_nums[si] ** 2
        for a in per_layer.values():
            assert a.shape == (2 * len(LABELS), n)
            assert a.sum(-1).tolist() == [max(1, int(0.3 * n))] * (2 * len(LABELS))


def test_external_data_export_runs(models, tmp_path, monkeypatch):
    save = onnx_files.save
    monkeypatch.setattr(onnx_files, "save", lambda model, path: save(model, path, external_data_bytes=0))
    manifest = export_model(models["tiny"], tmp_path / "x", progress=False)
    assert (tmp_path / "x" / "step.onnx.data").is_file() and "step.onnx.data" in manifest.data["files"]
    assert_same_generation(models["tiny"], manifest.directory, AmpConfig(layers=(1,)), labels=[2])
    gen = Generator(models["tiny"], backend="onnxruntime", export_dir=manifest.directory)
    gen.backend.record_amp_sets()
    gen.run([2], amp=AmpConfig(layers=(1,)))
    assert len(gen.backend.amp_indicators) == models["tiny"].cfg.num_scales


# ----- refusals ----------------------------------------------------------------------------

@pytest.fixture
def copy_of(exports, tmp_path):
    def copy(arm):
        return shutil.copytree(exports[arm].directory, tmp_path / arm)
    return copy


def ort(model, directory, **options):
    return Generator(model, backend="onnxruntime", export_dir=directory, **options)


def test_export_of_another_model_is_refused(models, exports):
    with pytest.raises(UserError, match=r"was made from model tiny \(random init\) \(\w+-\w+\), not tiny-plain "
                                        r"\(random init\) \(\w+-\w+\): re-run `hieramp export`"):
        ort(models["tiny-plain"], exports["logit-1-layer"].directory)


def test_damaged_file_is_refused(models, copy_of):
    directory = copy_of("logit-1-layer")
    data = bytearray((directory / "step.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (directory / "step.onnx").write_bytes(bytes(data))
    with pytest.raises(UserError, match=r"step.onnx is damaged \(its sha256 differs from the manifest's\): re-run"):
        ort(models["tiny"], directory)


def test_unreadable_onnx_file_is_refused(models, copy_of):
    directory = copy_of("logit-1-layer")
    (directory / "decode.onnx").write_bytes(b"not a protobuf")
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["files"]["decode.onnx"] = sha256_of(directory / "decode.onnx")   # damaged and re-listed
    (directory / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match=r"cannot load .*decode.onnx \(.*\): re-run `hieramp export`"):
        ort(models["tiny"], directory)


def test_missing_file_and_manifest_are_refused(models, copy_of, tmp_path):
    directory = copy_of("logit-1-layer")
    (directory / "update_2.onnx").unlink()
    with pytest.raises(UserError, match="update_2.onnx is missing from the export"):
        ort(models["tiny"], directory)
    (directory / "manifest.json").unlink()
    with pytest.raises(UserError, match="has no manifest.json: is it a directory made by `hieramp export`"):
        ort(models["tiny"], directory)
    with pytest.raises(UserError, match="does not exist: make one with `hieramp export"):
        ort(models["tiny"], tmp_path / "nowhere")
    with pytest.raises(UserError, match="pass export_dir"):
        Generator(models["tiny"], backend="onnxruntime")


def test_plugin_export_is_refused(models, tmp_path):
    export_model(models["tiny"], tmp_path / "p", op_form="plugin", progress=False)
    with pytest.raises(UserError, match="ONNX Runtime cannot run: re-export with --amp-op function"):
        ort(models["tiny"], tmp_path / "p")


@pytest.mark.parametrize("arm,amp,message", [
    ("logit-1-layer", AmpConfig(layers=(0,)), r"amplifies blocks \[1\], this run asks for \[0\]: pass --amp-layers 1"),
    ("logit-1-layer", AmpConfig(layers=(1,), mode="weight"), "amplifies in mode 'logit'.*--amp-mode logit"),
])
def test_run_that_differs_from_the_export_is_refused(models, exports, arm, amp, message):
    with pytest.raises(UserError, match=message):
        ort(models["tiny"], exports[arm].directory).run([1], amp=amp)


def test_cuda_without_onnxruntime_gpu_is_refused(models, exports):
    import onnxruntime
    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("onnxruntime-gpu is installed")
    with pytest.raises(UserError, match="needs onnxruntime-gpu" if torch.cuda.is_available() else "needs a CUDA GPU"):
        ort(models["tiny"], exports["logit-1-layer"].directory, device="cuda")


# ----- command line ------------------------------------------------------------------------

def test_cli_generate_with_onnxruntime_writes_the_same_pngs(tmp_path):
    assert main(["export", "--model", "tiny", "--out", str(tmp_path / "exp")]) == 0
    common = ["generate", "--model", "tiny", "--classes", "0-2", "--per-class", "2", "--seed", "7", "--batch-size", "4"]
    assert main([*common, "--out", str(tmp_path / "torch")]) == 0
    assert main([*common, "--backend", "onnxruntime", "--export", str(tmp_path / "exp"), "--out", str(tmp_path / "ort")]) == 0
    names = sorted(p.relative_to(tmp_path / "torch") for p in (tmp_path / "torch").rglob("*.png"))
    assert len(names) == 7
    assert names == sorted(p.relative_to(tmp_path / "ort") for p in (tmp_path / "ort").rglob("*.png"))
    for name in names:
        assert (tmp_path / "torch" / name).read_bytes() == (tmp_path / "ort" / name).read_bytes(), name


def test_cli_generate_with_another_models_export_exits_2(tmp_path, capsys):
    assert main(["export", "--model", "tiny-plain", "--out", str(tmp_path / "exp")]) == 0
    assert main(["generate", "--model", "tiny", "--classes", "0", "--backend", "onnxruntime",
                 "--export", str(tmp_path / "exp"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "was made from model tiny-plain (random init)" in err and "Traceback" not in err
    assert not np.any([p.suffix == ".png" for p in (tmp_path / "out").rglob("*")])

