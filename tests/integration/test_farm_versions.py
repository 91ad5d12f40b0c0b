"""An agent whose pytest differs from the client's cannot serve its run: the run
fails at once with a message naming both versions, and no test is dropped."""
from __future__ import annotations

import test_farm
from test_farm import write_slow_suite

farm = test_farm.farm  # the fixture


def test_agent_with_another_pytest_fails_the_run_clearly(farm, tmp_path):
    # The agent's Python reports another pytest version (sitecustomize runs first).
    fake = tmp_path / "fake-version"
    fake.mkdir()
    (fake / "sitecustomize.py").write_text("import pytest\npytest.__version__ = '6.2.5'\n")
    suite = tmp_path / "suite"
    write_slow_suite(suite, files=1, tests=2, seconds=0.0)
    farm.start_coordinator()
    farm.start_agent("old", 1, env={"PYTHONPATH": str(fake)})
    farm.wait_agents(1)
    result = farm.run(suite, "--run-id", "versions", timeout=120)
    assert result.rc == 3, result.describe() + farm.log_text()
    assert "no agent can run it: pytest 6.2.5 on agent old#" in result.stderr, result.describe()
    assert "the client has pytest 7." in result.stderr, result.describe()
    assert "2 errors" in result.stdout, result.describe()  # both tests accounted for as not run
