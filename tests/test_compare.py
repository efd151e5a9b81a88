import json
import math

import pytest
import torch

from hieramp import AmpConfig, Generator
from hieramp.cli import main
from hieramp.compare import Tolerances, _set_agreement, compare
from hieramp.export.exporter import export_model


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory, tiny_model):
    out = tmp_path_factory.mktemp("compare") / "tiny"
    export_model(tiny_model, out, amp_layers=(0, 1), amp_mode="weight", progress=False)
    return out


AMP = AmpConfig(layers=(0, 1), mode="weight", beta=3.0, rho=0.4)


def test_onnxruntime_matches_the_reference(tiny_model, export_dir):
    result = compare(Generator(tiny_model, backend="onnxruntime", export_dir=export_dir), labels=[0, 3, 7], seed=2,
                     amp=AMP, progress=False)
    assert result.passed and not result.failures
    assert result.backend == "onnxruntime" and result.labels == [0, 3, 7]
    assert [s.tokens for s in result.scales] == [1, 4, 9, 16]
    assert all(s.max_abs_error <= 1e-4 and s.max_rel_error <= 1e-4 and s.token_agreement == 1.0 for s in result.scales)
    assert [s.amp_set_agreement for s in result.scales] == [None, 1.0, 1.0, 1.0]
    assert result.token_agreement == 1.0 and len(result.psnr_db) == 3 and min(result.psnr_db) >= 40
    assert min(result.free_psnr_db) >= 40
    data = json.loads(json.dumps(result.to_dict()))
    assert data["passed"] is True and data["tolerances"]["min_psnr_db"] == 40.0
    assert "PASS" in result.table()


def test_exceeded_tolerance_fails_with_reasons(tiny_model, export_dir):
    strict = Tolerances(max_logit_error=0.0)
    result = compare(Generator(tiny_model, backend="onnxruntime", export_dir=export_dir), labels=[1], amp=AMP,
                     tolerances=strict, progress=False)
    assert not result.passed
    assert any(f.startswith("scale 3: logit error") and f.endswith("> 0") for f in result.failures)
    assert result.table().splitlines()[-1].startswith("FAIL: ")


def test_reference_against_itself_is_exact(tiny_model):
    result = compare(Generator(tiny_model), labels=[4], amp=AmpConfig(layers=(1,)), progress=False)
    assert result.passed and all(s.max_abs_error == 0 and s.argmax_agreement == 1.0 for s in result.scales)
    assert [s.amp_set_agreement for s in result.scales] == [None, 1.0, 1.0, 1.0]
    assert result.psnr_db == result.free_psnr_db == [math.inf]
    assert result.to_dict()["psnr_db"] == result.to_dict()["free_psnr_db"] == [None]


def test_reduced_precision_gates_relative_error_and_not_free_sampling():
    assert Tolerances.for_precision("fp32") == Tolerances(1e-4, None, 1.0, 1.0, 40.0, 1.0)
    for name in ("bf16", "fp16", "int8"):
        tol = Tolerances.for_precision(name)
        assert tol.max_logit_error is None and tol.max_rel_logit_error < 0.5 and tol.min_token_agreement == 0
        assert 0.85 <= tol.min_argmax_agreement < 1 and 0.5 <= tol.min_amp_set_agreement < 1 and tol.min_psnr_db >= 40
    fp16, bf16 = Tolerances.for_precision("fp16"), Tolerances.for_precision("bf16")
    assert fp16.max_rel_logit_error < bf16.max_rel_logit_error and fp16.min_argmax_agreement > bf16.min_argmax_agreement


def test_bf16_torch_against_the_fp32_reference(tiny_model):
    candidate = Generator(tiny_model, precision="bf16")
    result = compare(candidate, labels=[0, 5], amp=AmpConfig(layers=(1,)), tolerances=Tolerances.for_precision("bf16"),
                     progress=False)
    assert result.passed, result.failures
    assert all(0 < s.max_abs_error and s.max_rel_error < 1e-2 for s in result.scales)
    assert all(s.amp_set_agreement is not None for s in result.scales[1:])
    assert next(tiny_model.parameters()).dtype == torch.float32          # the reference kept its weights
    strict = compare(candidate, labels=[0, 5], amp=AmpConfig(layers=(1,)), progress=False)
    assert not strict.passed and any("logit error" in f for f in strict.failures)


def test_cli_json_uses_the_exported_amplification(export_dir, capsys):
    assert main(["compare", "--model", "tiny", "--export", str(export_dir), "--classes", "2,5", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["passed"] and data["backend"] == "onnxruntime" and data["labels"] == [2, 5]
    assert [s["amp_set_agreement"] for s in data["scales"]] == [None, 1.0, 1.0, 1.0]
    assert data["amp_set_agreement"] == data["amp_member_agreement"] == 1.0


def test_set_agreement_counts_whole_sets_and_memberships():
    """One swap at a set's boundary makes the set unequal and costs 2 of its n memberships."""
    plan = AmpConfig(layers=(0,), scales=(1,)).resolve(type("Cfg", (), {"depth": 2, "num_scales": 2, "cls_token_scales": (0, 1)})())
    ref = {1: {0: torch.tensor([[1, 1, 0, 0], [1, 0, 1, 0]], dtype=torch.bool)}}
    got = {1: {0: torch.tensor([[1, 0, 1, 0], [1, 0, 1, 0]], dtype=torch.bool)}}
    per_scale, sets, members = _set_agreement(plan, ref, got, 2)
    assert per_scale == {1: 0.5} and sets == 0.5 and members == 6 / 8
    assert _set_agreement(None, ref, got, 2) == ({}, None, None)


def test_cli_exits_1_when_a_tolerance_is_exceeded(export_dir, capsys):
    assert main(["compare", "--model", "tiny", "--export", str(export_dir), "--classes", "1",
                 "--max-logit-error", "0"]) == 1
    assert "FAIL: scale" in capsys.readouterr().out


def test_cli_refuses_an_export_of_another_model(export_dir, capsys):
    assert main(["compare", "--model", "tiny-plain", "--export", str(export_dir)]) == 2
    assert "was made from model tiny (random init)" in capsys.readouterr().err
