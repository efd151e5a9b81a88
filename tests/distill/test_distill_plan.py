import json
import os
import time

import pytest

from hieramp.distill import Job, Shard, parse_shard, plan_jobs, resolve_shard
from hieramp.distill.layout import Layout
from hieramp.distill.manifest import ShardManifest, drop_partial_line, finished_jobs, manifest_name
from hieramp.errors import UserError


def test_jobs_run_index_major_so_batches_mix_classes():
    assert plan_jobs([7, 2], 3) == [Job(7, 0), Job(2, 0), Job(7, 1), Job(2, 1), Job(7, 2), Job(2, 2)]


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8])
def test_shards_are_disjoint_and_together_complete(count):
    jobs = plan_jobs([0, 4, 9], 5)
    parts = [Shard(i, count).select(jobs) for i in range(count)]
    assert sorted(j for part in parts for j in part) == sorted(jobs)
    assert sum(len(part) for part in parts) == len(jobs)
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_growing_ipc_keeps_the_shard_of_earlier_images():
    small, large = plan_jobs([1, 2, 3], 2), plan_jobs([1, 2, 3], 5)
    for i in range(3):
        assert set(Shard(i, 3).select(small)) <= set(Shard(i, 3).select(large))


def test_bad_plans():
    with pytest.raises(UserError, match="at least 1"):
        plan_jobs([0], 0)
    with pytest.raises(UserError, match="no classes"):
        plan_jobs([], 3)


def test_shard_parsing_and_torchrun_environment():
    assert parse_shard("1/4") == Shard(1, 4)
    assert resolve_shard(None, {}) == Shard(0, 1)
    assert resolve_shard(None, {"RANK": "3", "WORLD_SIZE": "4"}) == Shard(3, 4)
    assert resolve_shard("0/2", {"RANK": "3", "WORLD_SIZE": "4"}) == Shard(0, 2)      # the flag wins
    for text in ["4/4", "-1/2", "1", "a/b", "1/0"]:
        with pytest.raises(UserError, match="shard"):
            parse_shard(text)
    with pytest.raises(UserError, match="RANK"):
        resolve_shard(None, {"RANK": "x", "WORLD_SIZE": "2"})


def test_manifest_names():
    assert manifest_name(Shard()) == "manifest.jsonl"
    assert manifest_name(Shard(2, 3)) == "manifest.2-of-3.jsonl"


def ok_line(c, i):
    return json.dumps({"class": c, "index": i, "status": "ok", "file": f"{c}/{i}.png"})


def test_finished_jobs_reads_every_manifest_and_ignores_cut_lines(tmp_path):
    for c, i in [(0, 0), (1, 0), (0, 1)]:
        (tmp_path / str(c)).mkdir(exist_ok=True)
        (tmp_path / f"{c}/{i}.png").write_bytes(b"png")
    (tmp_path / "manifest.jsonl").write_text(ok_line(0, 0) + "\n" + ok_line(1, 0)[:20])
    (tmp_path / "manifest.1-of-2.jsonl").write_text(
        ok_line(0, 1) + "\n" + ok_line(5, 5) + "\n"                                   # 5/5.png does not exist
        + json.dumps({"class": 2, "index": 0, "status": "blank", "file": None}) + "\n")
    assert finished_jobs(tmp_path) == {Job(0, 0), Job(0, 1), Job(2, 0)}


def test_manifest_drops_a_cut_line_before_appending(tmp_path):
    path = tmp_path / "manifest.jsonl"
    path.write_text(ok_line(0, 0) + "\n" + ok_line(1, 0)[:20])
    with ShardManifest(path) as manifest:
        manifest.append({"class": 1, "index": 0})
    assert path.read_text().splitlines() == [ok_line(0, 0), '{"class": 1, "index": 0}']
    path.write_text('{"cut')
    drop_partial_line(path)
    assert path.read_bytes() == b""


def test_manifest_drops_a_damaged_last_line_and_says_so(tmp_path, capsys):
    path = tmp_path / "manifest.jsonl"
    for damaged in ('{"class": 1, "index"\n', '[1, 2]\n', '{"class": 1, "index": 0}\n', "\0\0\0\0"):
        path.write_text(ok_line(0, 0) + "\n" + damaged)
        with ShardManifest(path):
            pass
        assert path.read_text() == ok_line(0, 0) + "\n"
        assert capsys.readouterr().err.count("dropped its last line") == 1
    with ShardManifest(path):                                            # an intact manifest is left alone, silently
        pass
    assert path.read_text() == ok_line(0, 0) + "\n" and capsys.readouterr().err == ""


@pytest.mark.parametrize("damaged", ['{"class": 1, "garb', "[1, 2]", "", '{"class": "1", "index": 0, "status": "ok"}'])
def test_a_damaged_line_before_the_last_is_refused_by_number(tmp_path, damaged):
    (tmp_path / "0").mkdir()
    (tmp_path / "0/0.png").write_bytes(b"png")
    path = tmp_path / "manifest.jsonl"
    path.write_text("\n".join([ok_line(0, 0), damaged, ok_line(0, 1)]) + "\n")
    with pytest.raises(UserError, match=r"manifest.jsonl line 2 is damaged .*only a last line can be cut short"):
        finished_jobs(tmp_path)
    with pytest.raises(UserError, match="line 2 is damaged"):       # resuming does not repair it either
        with ShardManifest(path):
            finished_jobs(tmp_path)
    assert path.read_text().count("\n") == 3


def test_claim_pins_settings_and_refuses_others(tmp_path):
    layout = Layout(tmp_path, 10)
    layout.claim({"seed": 1, "classes": (0, 1), "ipc": 2})
    layout.claim({"seed": 1, "classes": [0, 1], "ipc": 2})
    before = (tmp_path / "run.json").read_bytes()
    with pytest.raises(UserError, match=r"ipc is 2 there but 3 now \(--ipc\); seed is 1 there but 2 now \(--seed\)"):
        layout.claim({"seed": 2, "classes": [0, 1], "ipc": 3})
    assert (tmp_path / "run.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]


def test_claim_refuses_a_foreign_non_empty_directory(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty"):
        Layout(tmp_path, 10).claim({"seed": 0})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_stale_temporaries_of_own_jobs_are_removed(tmp_path):
    layout = Layout(tmp_path, 10)
    layout.make_folders([3])
    own, other = tmp_path / "3" / ".0.png.tmp-123", tmp_path / "3" / ".1.png.tmp-456"
    old_root, new_root = tmp_path / ".run.json.tmp-7", tmp_path / ".mapping.json.tmp-8"
    for path in (own, other, old_root, new_root):
        path.write_bytes(b"partial")
    os.utime(old_root, (time.time() - 3600,) * 2)
    layout.remove_stale_temps([Job(3, 0)])                  # Job(3, 1) belongs to another shard
    assert not own.exists() and other.exists()
    assert not old_root.exists() and new_root.exists()


def test_one_process_per_shard(tmp_path):
    path = tmp_path / "manifest.jsonl"
    with ShardManifest(path):
        with pytest.raises(UserError, match="another process is writing .*manifest.jsonl: it runs the same shard"):
            ShardManifest(path)
    ShardManifest(path).close()                                  # released on close (and by the kernel on a kill)
