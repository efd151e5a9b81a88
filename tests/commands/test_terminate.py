"""SIGTERM (a scheduler, torchrun, kill) ends a command like Ctrl-C: one line, exit 143, and the
staged output directory is removed, not left beside the output."""
import os
import signal
import subprocess
import sys
import time


def test_sigterm_during_an_export_leaves_nothing(tmp_path):
    out = tmp_path / "export"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "hieramp", "export", "--model", "d16", "--random-init", "--out", str(out)],
                            stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 240
    while not any(p.name.startswith(".export.tmp-") for p in tmp_path.iterdir()):
        assert proc.poll() is None and time.monotonic() < deadline, "the export ended before its staging directory appeared"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143 and stderr.strip().splitlines()[-1] == "hieramp export: terminated"
    assert list(tmp_path.iterdir()) == []
