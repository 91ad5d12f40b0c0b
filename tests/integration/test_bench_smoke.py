"""bench/bench_local.py end to end, shrunk to one round of small suites: the README's
benchmark command keeps working (it is not timed here: tests check behaviour)."""
from __future__ import annotations

import re
import subprocess

import drover_helpers as h


def test_bench_local_runs_every_tool_and_reports_the_goals(drover, tmp_path):
    xdist = subprocess.run([h.PY, "-c", "import xdist"], capture_output=True).returncode == 0
    result = h.run_process(
        [h.PY, str(h.SOURCE_DIR / "bench" / "bench_local.py"), "--drover", drover, "--python", h.PY,
         "--rounds", "1", "--skew-scale", "0.1", "--budget", "1"],
        cwd=tmp_path, env=h.clean_env({"TMPDIR": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"}), timeout=240)
    try:
        assert result.rc == 0, result.describe()
        out = result.stdout
        assert "bytecode cache on (PYTHONDONTWRITEBYTECODE unset)" in out  # whatever the caller set
        assert re.search(r"== skewed: 200 tests, 3 of 0\.1-0\.2 s \(scale 0\.1\)", out), out
        assert "recorded in .test_durations" in out, out  # the learning run wrote them
        for label in ("drover / pytest", "drover / lower bound"):
            assert re.search(rf"^  {re.escape(label)} +\d+\.\d\dx", out, re.M), out
        if xdist:
            assert re.search(r"^  drover / xdist +\d+\.\d\dx +goal <= 0\.50x", out, re.M), out
        assert not list(tmp_path.glob("drover-bench-*")), "the generated suites were left behind"
    finally:
        h.kill_processes_in(tmp_path)
