import pytest
import torch

from hieramp.compare import DiTTolerances, compare_dit
from hieramp.errors import UserError
from hieramp.export.dit import export_dit
from hieramp.model.dit.amp import DiTAmpConfig
from hieramp.model.dit.diffusion import DiTSampling
from hieramp.model.dit.presets import random_dit_model
from hieramp.runtime.dit.backends import OrtStep, TorchStep
from hieramp.runtime.dit.generator import DiTGenerator


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory, tiny_dit_model):
    out = tmp_path_factory.mktemp("dit-export") / "tiny"
    export_dit(tiny_dit_model, out, amp_layers=(1, 2))
    return out


@pytest.mark.parametrize("beta, source", [(1.0, "cfg-diff"), (5.0, "cfg-diff"), (5.0, "attention")])
def test_onnxruntime_equals_torch_on_the_forced_path(tiny_dit_model, export_dir, beta, source):
    """Both backends step from the torch trajectory's latents with the torch masks."""
    plan = DiTAmpConfig(beta=beta, layers=(1, 2), mask=source).resolve(tiny_dit_model.cfg, 4)
    ref, ort = TorchStep(tiny_dit_model), OrtStep(tiny_dit_model, export_dir=export_dir)
    ref.begin(torch.tensor([0, 4, 9]), plan), ort.begin(torch.tensor([0, 4, 9]), plan)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(3, 4, 8, 8, generator=gen), torch.tensor([0, 4, 9])
    mask = (torch.rand(3, 16, generator=gen) < 0.5).float()
    for t in (999, 500, 0):
        tt = torch.full((3,), t)
        a = ref.step(0, x, tt, y, 4.0, mask, beta, True)
        b = ort.step(0, x, tt, y, 4.0, mask, beta, True)
        for got, want in zip(b, a):
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
        x = a[0][:, :4]


def test_onnxruntime_generates_the_torch_images(tiny_dit_model, export_dir):
    amp = DiTAmpConfig(layers=(1, 2), mask="attention")
    a = DiTGenerator(tiny_dit_model).run([2, 8], sampling=DiTSampling(steps=4), amp=amp, return_masks=True)
    b = DiTGenerator(tiny_dit_model, backend="onnxruntime", export_dir=export_dir).run([2, 8], sampling=DiTSampling(steps=4), amp=amp, return_masks=True)
    assert all(torch.equal(p, q) for p, q in zip(a.masks[1:], b.masks[1:]))
    torch.testing.assert_close(b.images, a.images, atol=1e-3, rtol=0)


def test_export_of_another_model_or_other_blocks_is_refused(export_dir, tiny_dit_model):
    other = random_dit_model("dit-tiny")
    other.dit.blocks[0].attn.qkv.bias.data += 1
    other.source = type(other.source)("edited", "0" * 64, "0" * 64)
    with pytest.raises(UserError, match="was made from model dit-tiny"):
        OrtStep(other, export_dir=export_dir)
    with pytest.raises(UserError, match=r"amplifies blocks \[1, 2\], this run asks for \[2\]"):
        DiTGenerator(tiny_dit_model, backend="onnxruntime", export_dir=export_dir).run([0], sampling=DiTSampling(steps=2), amp=DiTAmpConfig(layers=(2,)))


def test_compare_passes_onnxruntime_and_reports_each_step(tiny_dit_model, export_dir):
    candidate = DiTGenerator(tiny_dit_model, backend="onnxruntime", export_dir=export_dir)
    result = compare_dit(candidate, labels=[1, 6], sampling=DiTSampling(steps=3), amp=DiTAmpConfig(layers=(1, 2)), progress=False)
    assert result.passed, result.failures
    assert [s.step for s in result.steps] == [0, 1, 2] and [s.timestep for s in result.steps] == [999, 500, 0]
    assert [s.mask_agreement for s in result.steps] == [None, 1.0, 1.0]
    assert all(s.max_abs_error < 1e-4 for s in result.steps) and min(result.psnr_db) > 40
    strict = compare_dit(candidate, labels=[1], sampling=DiTSampling(steps=2), amp=DiTAmpConfig(layers=(1, 2)),
                         tolerances=DiTTolerances(max_output_error=0.0), progress=False)
    assert not strict.passed and "output error" in strict.failures[0]
    assert strict.to_dict()["passed"] is False

