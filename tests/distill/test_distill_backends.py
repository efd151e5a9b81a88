import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("onnxruntime")

from hieramp.cli import main  # noqa: E402
from hieramp.export.exporter import export_model  # noqa: E402

COMMON = ["--model", "tiny", "--classes", "0-4", "--ipc", "2", "--save-size", "8", "--seed", "2", "--no-progress"]


@pytest.fixture(scope="module")
def exports(tiny_model, tiny_plain_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("exports")
    return {"tiny": export_model(tiny_model, root / "tiny", progress=False),
            "plain": export_model(tiny_plain_model, root / "plain", progress=False)}


def distill(out, *extra):
    return main(["distill", *COMMON, "--out", str(out), *extra])


def pixels(out):
    return {str(p.relative_to(out)): np.asarray(Image.open(p), dtype=np.int16) for p in sorted(out.rglob("*.png"))}


def test_onnxruntime_makes_the_torch_images_and_records_its_export(exports, tmp_path):
    assert distill(tmp_path / "torch", "--batch-size", "3") == 0
    assert distill(tmp_path / "ort", "--backend", "onnxruntime", "--export", str(exports["tiny"].directory),
                   "--batch-size", "4") == 0
    ort, ref = pixels(tmp_path / "ort"), pixels(tmp_path / "torch")
    assert ort.keys() == ref.keys() and len(ort) == 10
    assert max(np.abs(ort[k] - ref[k]).max() for k in ref) <= 2            # 8-bit levels
    records = [json.loads(line) for line in (tmp_path / "ort" / "manifest.jsonl").read_text().splitlines()]
    assert {(r["backend"], r["artifact"]) for r in records} == {("onnxruntime", exports["tiny"].artifact_id)}


@pytest.mark.parametrize("export, extra, message", [
    ("plain", [], "was made from model tiny-plain"),
    ("tiny", ["--amp-layers", "0"], "amplifies blocks [1], this run asks for [0]"),
    ("tiny", ["--amp-mode", "weight"], "amplifies in mode 'logit'"),
], ids=["other-model", "other-blocks", "other-mode"])
def test_an_export_that_does_not_fit_exits_2_and_writes_nothing(exports, tmp_path, capsys, export, extra, message):
    out = tmp_path / "out"
    assert distill(out, "--backend", "onnxruntime", "--export", str(exports[export].directory), *extra) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_switching_backend_on_an_existing_run_is_refused(exports, tmp_path, capsys):
    out = tmp_path / "out"
    assert distill(out) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert distill(out, "--backend", "onnxruntime", "--export", str(exports["tiny"].directory)) == 2
    assert 'backend is "torch" there but "onnxruntime" now (--backend)' in capsys.readouterr().err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
