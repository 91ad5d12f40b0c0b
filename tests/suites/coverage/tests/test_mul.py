import subprocess
import sys

from calc.ops import mul


def test_mul():
    assert mul(2, 3) == 6


def test_subprocess_is_measured_too():
    # pytest-cov measures subprocesses (its .pth hook): their data must reach the report.
    code = "from calc.ops import only_in_a_subprocess as f; assert f() == 42"
    subprocess.run([sys.executable, "-c", code], check=True)
