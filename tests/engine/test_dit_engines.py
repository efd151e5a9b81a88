"""`hieramp build` of a DiT export with TensorRT-RTX on the CPU (a real engine, its profiles, the
staleness check through the DiT export), and the DiT tensorrt backend: its refusals here, its
parity with torch on a GPU (marked gpu, skipped without one)."""
import pytest
import torch

from hieramp.cli import main
from hieramp.engine import EngineManifest, build_engines
from hieramp.errors import UserError
from hieramp.export.dit import export_dit
from hieramp.model.dit.amp import DiTAmpConfig
from hieramp.runtime.backends import backend_class
from hieramp.runtime.dit.backends import TorchStep
from hieramp.runtime.dit.generator import DiTGenerator
from hieramp.runtime.dit.trt_step import TrtStep

GPU_NAMED = {"name": "some GPU", "compute_capability": "9.0"}


@pytest.fixture(scope="module")
def dit_export(tmp_path_factory, tiny_dit_model):
    return export_dit(tiny_dit_model, tmp_path_factory.mktemp("dit") / "export", amp_layers=(1, 2))


@pytest.fixture(scope="module")
def dit_engines(rtx, dit_export):
    out = dit_export.directory.parent / "engines"
    assert main(["build", str(dit_export.directory), "--out", str(out), "--flavour", "tensorrt-rtx",
                 "--batch-sizes", "1,3"]) == 0
    return EngineManifest.read(out)


def test_build_writes_one_step_engine_with_a_profile_per_batch_bucket(rtx, dit_engines, dit_export, tiny_dit_model, capsys):
    m, cfg = dit_engines, tiny_dit_model.cfg
    assert list(m.data["files"]) == ["dit_step.engine"] and m.engine("step").name == "dit_step.engine"
    assert m.engine("step").stat().st_size > rtx.module.Runtime(rtx.module.Logger()).engine_header_size
    assert m.backbone == "dit" and m.amp_layers == (1, 2) and m.amp_op is None and m.precision == "fp32"
    assert m.data["export"]["artifact_id"] == dit_export.artifact_id and m.data["export"]["patch_nums"] is None
    profiles = m.data["profiles"]["step"]
    assert [p["batch"] for p in profiles] == [[1, 1], [2, 3]] and {p["scale"] for p in profiles} == {None}
    latent = [cfg.in_channels, cfg.input_size, cfg.input_size]
    assert profiles[1]["shapes"]["x"] == [[2, *latent], [3, *latent], [3, *latent]]
    assert profiles[1]["shapes"]["mask"] == [[2, cfg.num_tokens], [3, cfg.num_tokens], [3, cfg.num_tokens]]
    assert m.profile("step", 3) == 1 and m.batch_size_for(2) == 3
    m.check(tiny_dit_model, rtx, GPU_NAMED)                     # fits: no error


def test_default_batch_sizes_and_a_changed_export_is_stale(rtx, tiny_dit_model, tmp_path):
    export = export_dit(tiny_dit_model, tmp_path / "export", amp_layers=(2,))
    m = build_engines(export.directory, tmp_path / "engines", flavour="tensorrt-rtx", progress=False)
    assert m.batch_sizes == (1, 8)
    assert m.stale_reason(rtx, GPU_NAMED) is None
    export_dit(tiny_dit_model, export.directory, amp_layers=(1,))
    assert "now holds artifact" in m.stale_reason(rtx, GPU_NAMED)


def test_the_tensorrt_backend_runs_dit_on_a_gpu_only(tiny_dit_model, dit_engines):
    assert backend_class("tensorrt", "dit") is TrtStep
    with pytest.raises(UserError, match="runs on a CUDA GPU, not cpu: pass --device cuda"):
        DiTGenerator(tiny_dit_model, backend="tensorrt", device="cpu", engine_dir=dit_engines.directory)
    with pytest.raises(UserError, match="pass --engine DIR"):
        TrtStep(tiny_dit_model, device="cpu")


@pytest.mark.gpu
def test_tensorrt_equals_torch_on_the_forced_path(tiny_dit_model, dit_export, tmp_path):
    engines = build_engines(dit_export.directory, tmp_path / "gpu-engines", batch_sizes=(1, 4), progress=False)
    plan = DiTAmpConfig(beta=5.0, layers=(1, 2), mask="attention").resolve(tiny_dit_model.cfg, 4)
    labels = torch.tensor([0, 4, 9])
    ref, trt = TorchStep(tiny_dit_model, "cuda"), TrtStep(tiny_dit_model, "cuda", engine_dir=engines.directory)
    ref.begin(labels, plan), trt.begin(labels, plan)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, 8, 8, generator=gen).cuda()
    mask = (torch.rand(3, 16, generator=gen) < 0.5).float().cuda()
    for t in (999, 500, 0):
        tt = torch.full((3,), t, device="cuda")
        for got, want in zip(trt.step(0, x, tt, labels.cuda(), 4.0, mask, 5.0, True),
                             ref.step(0, x, tt, labels.cuda(), 4.0, mask, 5.0, True)):
            torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
