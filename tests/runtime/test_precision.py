"""Reduced precision in the torch backend, export --quantize on ONNX Runtime, and their refusals."""
import pytest
import torch

from hieramp import AmpConfig, Generator, UserError
from hieramp.cli import main
from hieramp.compare import Tolerances, compare
from hieramp.export.exporter import export_model
from hieramp.export.quantize import head_nodes
from hieramp.precision import check_precision, precision_list

AMP = AmpConfig(layers=(1,))


def test_precision_names_and_the_fp16_cpu_refusal():
    assert check_precision("bf16", "cpu") == torch.bfloat16 and check_precision("fp16", "cuda") == torch.float16
    with pytest.raises(UserError, match="fp16 runs on GPUs only.*--precision bf16"):
        check_precision("fp16", "cpu")
    with pytest.raises(UserError, match="unknown precision 'int4'"):
        check_precision("int4", "cpu")
    assert precision_list("fp32, bf16,fp32") == ("fp32", "bf16")
    with pytest.raises(UserError, match="unknown precision 'fp8'"):
        precision_list("fp32,fp8")


def test_bf16_runs_the_block_products_in_bf16_and_keeps_the_rest_float32(tiny_model):
    gen = Generator(tiny_model, backend="torch", device="cpu", precision="bf16")
    var = gen.backend.var
    assert var is not tiny_model.var and next(tiny_model.parameters()).dtype == torch.float32
    low = {n for n, p in var.named_parameters() if p.dtype == torch.bfloat16}
    assert low == {f"blocks.{i}.{m}.{w}" for i in range(tiny_model.cfg.depth)
                   for m in ("attn.mat_qkv", "attn.proj", "ffn.fc1", "ffn.fc2") for w in ("weight", "bias")} - \
        {f"blocks.{i}.attn.mat_qkv.bias" for i in range(tiny_model.cfg.depth)}
    assert var.head.weight.dtype == torch.float32 and gen.backend.decoder.decoder.conv_in.weight.dtype == torch.bfloat16
    result = gen.run([1, 2], amp=AMP, return_logits=True)
    assert all(x.dtype == torch.float32 for x in result.logits) and result.images.dtype == torch.float32
    ref = Generator(tiny_model).run([1, 2], amp=AMP, forced_tokens=result.tokens, return_logits=True)
    diff = max(float((a - b).abs().max()) for a, b in zip(result.logits, ref.logits))
    assert 0 < diff < 0.05                                           # bf16 rounding, not another model


def test_generate_refuses_fp16_on_cpu_in_one_line(tmp_path, capsys):
    assert main(["generate", "--model", "tiny", "--classes", "1", "--precision", "fp16", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "fp16 runs on GPUs only" in err


def test_generate_bf16_writes_images(tmp_path):
    assert main(["generate", "--model", "tiny", "--classes", "1,2", "--precision", "bf16", "--amp-layers", "1",
                 "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.rglob("*.png")) == ["0.png", "0.png", "grid.png"]


def test_compile_is_for_the_torch_backend(tmp_path, capsys):
    assert main(["generate", "--model", "tiny", "--classes", "1", "--backend", "onnxruntime", "--export", str(tmp_path),
                 "--compile", "--out", str(tmp_path / "o")]) == 2
    assert "--compile applies to the torch backend" in capsys.readouterr().err


@pytest.fixture(scope="module")
def quantized(tmp_path_factory, tiny_model):
    return export_model(tiny_model, tmp_path_factory.mktemp("q") / "int8", amp_layers=(1,), quantize=True, progress=False)


def test_quantized_export_keeps_the_head_float(quantized):
    import onnx
    assert quantized.quantization == "int8-dynamic" and quantized.precision == "int8" and quantized.dtype == "fp32"
    model = onnx.load(str(quantized.graph("step")))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("MatMulInteger") == 4 * 2                        # qkv, proj, fc1, fc2 of both blocks
    head = head_nodes(model)
    assert len(head) == 1 and model.graph.node[[n.name for n in model.graph.node].index(head[0])].op_type == "MatMul"


def test_quantized_export_passes_the_int8_gates(tiny_model, quantized):
    gen = Generator(tiny_model, backend="onnxruntime", export_dir=quantized.directory)
    assert gen.backend.precision == "int8"
    result = compare(gen, labels=[0, 4, 7], amp=AMP, tolerances=Tolerances.for_precision("int8"), progress=False)
    assert result.passed, result.failures
    assert 0 < max(s.max_abs_error for s in result.scales) and result.amp_set_agreement is not None


def test_onnxruntime_refuses_another_precision(tiny_model, quantized):
    with pytest.raises(UserError, match=r"is fp32, this run asks for fp16: pass --precision fp32, or re-export with --dtype fp16"):
        Generator(tiny_model, backend="onnxruntime", export_dir=quantized.directory, precision="fp16")


def test_quantize_needs_fp32_and_tensorrt_refuses_quantized_exports(tiny_model, quantized, tmp_path):
    with pytest.raises(UserError, match="--quantize turns fp32 weights into int8"):
        export_model(tiny_model, tmp_path / "x", dtype="fp16", quantize=True, progress=False)
    from hieramp.engine import build_engines
    with pytest.raises(UserError, match="quantised for ONNX Runtime"):
        build_engines(quantized.directory, tmp_path / "engines")


@pytest.mark.slow
def test_compiled_blocks_match_eager(tiny_model):
    eager = Generator(tiny_model).run([3, 6], amp=AMP, return_logits=True)
    compiled = Generator(tiny_model, compile=True)
    assert compiled.backend.var is not tiny_model.var                  # compiles its own copy
    result = compiled.run([3, 6], amp=AMP, forced_tokens=eager.tokens, return_logits=True)
    for a, b in zip(result.logits, eager.logits):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
