"""The tensorrt backend. Without a CUDA GPU only its refusals run; execution, CUDA-graph and
parity tests are marked gpu and skip cleanly here."""
import pytest
import torch

from hieramp import AmpConfig, Generator, UserError
from hieramp.engine import build_engines

AMP = AmpConfig(layers=(1,))


def test_refuses_a_cpu_device(tiny_model, tmp_path):
    with pytest.raises(UserError, match="runs on a CUDA GPU, not cpu: pass --device cuda"):
        Generator(tiny_model, backend="tensorrt", device="cpu", engine_dir=tmp_path)
    with pytest.raises(UserError, match="pass engine_dir" if torch.cuda.is_available() else "device 'cuda' needs a CUDA GPU"):
        Generator(tiny_model, backend="tensorrt", device="cuda")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_refuses_without_a_gpu(tiny_model, tmp_path):
    with pytest.raises(UserError, match="device 'cuda' needs a CUDA GPU"):
        Generator(tiny_model, backend="tensorrt", device="cuda", engine_dir=tmp_path)


@pytest.fixture(scope="module")
def gpu_engines(tiny_export):
    """Engines built with what this machine has (TensorRT on the GPU, else TensorRT-RTX)."""
    return build_engines(tiny_export.directory, tiny_export.directory.parent / "gpu-engines", batch_sizes=(1, 4),
                         progress=False)


@pytest.mark.gpu
def test_generation_matches_reference(tiny_model, gpu_engines):
    labels = [1, 5, 9]
    ref = Generator(tiny_model, device="cuda").run(labels, seed=3, amp=AMP, return_logits=True)
    trt = Generator(tiny_model, backend="tensorrt", device="cuda", engine_dir=gpu_engines.directory)
    forced = trt.run(labels, seed=3, amp=AMP, forced_tokens=ref.tokens, return_logits=True)
    for si, (a, b) in enumerate(zip(forced.logits, ref.logits)):
        assert float((a - b).abs().max()) <= 1e-3, f"scale {si}"
    free = trt.run(labels, seed=3, amp=AMP)
    for a, b in zip(free.tokens, ref.tokens):
        assert torch.equal(a, b)
    torch.testing.assert_close(free.images, ref.images, atol=1e-3, rtol=0)


@pytest.mark.gpu
def test_buffers_once_per_batch_size_and_graphs_replayed(tiny_model, gpu_engines):
    gen = Generator(tiny_model, backend="tensorrt", device="cuda", engine_dir=gpu_engines.directory)
    first = gen.run([1, 2, 3], seed=0, amp=AMP)                 # padded to the built size 4
    batch = gen.backend._batches[4]
    cache, graphs = batch.cache.k[0], [w.graph for w in batch.step_work]
    assert all(g is not None for g in graphs) and cache.shape[0] == 8
    again = gen.run([1, 2, 3], seed=0, amp=AMP)
    gen.run([4], seed=0, amp=AMP)
    assert sorted(gen.backend._batches) == [1, 4] and gen.backend._batches[4].cache.k[0] is cache
    assert [w.graph for w in batch.step_work] == graphs
    torch.testing.assert_close(again.images, first.images, atol=0, rtol=0)
    for a, b in zip(again.tokens, first.tokens):
        assert torch.equal(a, b)


@pytest.mark.gpu
def test_graphs_match_eager_enqueue(tiny_model, gpu_engines):
    eager = Generator(tiny_model, backend="tensorrt", device="cuda", engine_dir=gpu_engines.directory)
    eager.backend.cuda_graphs = False
    graphed = Generator(tiny_model, backend="tensorrt", device="cuda", engine_dir=gpu_engines.directory)
    for _ in range(2):                                          # the second run replays the graphs
        a, b = eager.run([0, 7], seed=1, amp=AMP), graphed.run([0, 7], seed=1, amp=AMP)
        torch.testing.assert_close(a.images, b.images, atol=0, rtol=0)


def test_amplification_must_match_the_engines(tiny_engines, tiny_model):
    from hieramp.export.manifest import check_amp_plan
    cfg = tiny_model.cfg

    def check(plan):
        check_amp_plan(tiny_engines, plan, "engine directory X", "export and build")
    check(AMP.resolve(cfg))
    check(None)
    with pytest.raises(UserError, match=r"X amplifies blocks \[1\], this run asks for \[0\]: pass --amp-layers 1"):
        check(AmpConfig(layers=(0,)).resolve(cfg))
    with pytest.raises(UserError, match="amplifies in mode 'logit', this run asks for 'weight'.*export and build"):
        check(AmpConfig(layers=(1,), mode="weight").resolve(cfg))


@pytest.mark.gpu
def test_artifact_id_identifies_the_engines(tiny_model, gpu_engines):
    gen = Generator(tiny_model, backend="tensorrt", device="cuda", engine_dir=gpu_engines.directory)
    assert gen.backend.artifact_id == gpu_engines.artifact_id and gen.backend.manifest.dtype == "fp32"
