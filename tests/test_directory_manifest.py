import json

import pytest

from hieramp.engine.manifest import EngineManifest
from hieramp.errors import UserError
from hieramp.export.manifest import ExportManifest


@pytest.mark.parametrize("cls, command", [(ExportManifest, "hieramp export"), (EngineManifest, "hieramp build")])
def test_written_manifests_read_back_and_bad_ones_name_the_fix(tmp_path, cls, command):
    written = cls.write(tmp_path, {"files": {"a.bin": "0" * 64}})
    read = cls.read(tmp_path)
    assert read.data == written.data and read.artifact_id == written.artifact_id
    assert read.data["format"] == cls.FORMAT and read.data["format_version"] == cls.FORMAT_VERSION
    with pytest.raises(UserError, match=f"a.bin is missing from the {cls.WHAT}: re-run `{command}`"):
        read.verify_files()

    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({**written.data, "format_version": 99}))
    with pytest.raises(UserError, match=f"has format version 99, this hieramp reads 1: re-run `{command}`"):
        cls.read(tmp_path)
    path.write_text("{ half")
    with pytest.raises(UserError, match=f"cannot read .*manifest.json .*: re-run `{command}`"):
        cls.read(tmp_path)
    with pytest.raises(UserError, match=f"{cls.WHAT} .*nowhere does not exist: make one with `{command}"):
        cls.read(tmp_path / "nowhere")


def test_build_and_export_never_replace_the_other_kind_of_directory(tiny_model, tmp_path):
    from hieramp.engine import build_engines
    from hieramp.export.exporter import export_model
    export = export_model(tiny_model, tmp_path / "export", max_batch=1, progress=False)
    before = sorted(p.name for p in export.directory.iterdir())
    with pytest.raises(UserError, match="exists and is not an engine directory"):
        build_engines(export.directory, export.directory, flavour="tensorrt-rtx", progress=False)
    assert sorted(p.name for p in export.directory.iterdir()) == before
    engines = tmp_path / "engines"
    EngineManifest.write(engines.mkdir() or engines, {"files": {}})
    with pytest.raises(UserError, match="exists and is not an export directory"):
        export_model(tiny_model, engines, max_batch=1, progress=False)
    assert EngineManifest.describes(engines) and not ExportManifest.describes(engines)
