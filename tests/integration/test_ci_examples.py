"""The CI examples in ci_examples/ are valid YAML, and every `drover ...` command
in them parses and validates with the real binary (`drover --check-args ...`),
given the variables that CI would set (matrix values, env blocks, the CI's own
shard variables, which drover reads itself)."""
from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml  # python3-yaml, installed by deploy/install-deps.sh

import drover_helpers as h

EXAMPLES_DIR = h.SOURCE_DIR / "ci_examples"
EXAMPLES = ("github-actions.yml", "github-actions-queue.yml", "gitlab-ci.yml", "buildkite.yml")
# What each example must use at least.
SUBCOMMANDS = {"github-actions-queue.yml": {"run", "durations", "report", "merge"}}
# Values GitHub would put in contexts other than matrix and env.
GITHUB_CONTEXT = {"github.run_id": "1234", "github.run_attempt": "1", "secrets.DROVER_TOKEN": "s3cret"}
SHELL_OPERATORS = re.compile(r"^[();<>|&]+$")


class Command:
    def __init__(self, where: str, argv: list[str], env: dict[str, str]):
        self.where, self.argv, self.env = where, argv, env

    def __repr__(self) -> str:
        return f"{self.where}: {shlex.join(self.argv)}"


def _substitute(text: str, env: dict[str, str], matrix: dict[str, list], where: str) -> str:
    def github(match: re.Match) -> str:
        expr = match.group(1)
        scope, _, name = expr.partition(".")
        if scope == "matrix" and name in matrix:
            return str(matrix[name][0])
        if scope == "env" and name in env:
            return env[name]
        if expr in GITHUB_CONTEXT:
            return GITHUB_CONTEXT[expr]
        raise AssertionError(f"{where}: cannot evaluate ${{{{ {expr} }}}}")

    def shell(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        if name not in env:
            raise AssertionError(f"{where}: ${name} is not set by the example or the CI")
        return re.sub(r"\$\{\{\s*(.*?)\s*\}\}", github, str(env[name]))  # env values may use contexts

    text = re.sub(r"\$\{\{\s*(.*?)\s*\}\}", github, text)
    text = text.replace("$$", "$")  # Buildkite's escape for a runtime variable
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", shell, text)


def _drover_commands(script: str, env: dict[str, str], matrix: dict[str, list], where: str) -> list[Command]:
    """Every `drover ...` command line of a shell script, as argv, variables expanded."""
    commands = []
    for line in script.replace("\\\n", " ").splitlines():
        if "drover " not in line:
            continue
        lexer = shlex.shlex(_substitute(line, env, matrix, where), posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        segment: list[str] = []
        for token in [*lexer, ";"]:
            if SHELL_OPERATORS.match(token):
                if segment and segment[0] == "drover":
                    commands.append(Command(where, segment, env))
                segment = []
            else:
                segment.append(token)
    return commands


def _scripts(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def _github_commands(doc: dict) -> list[Command]:
    commands = []
    for name, job in doc["jobs"].items():
        env = {**doc.get("env", {}), **job.get("env", {}), "GITHUB_PATH": "/tmp/github_path"}
        matrix = job.get("strategy", {}).get("matrix", {})
        for step in job.get("steps", []):
            if "run" in step:
                commands += _drover_commands(step["run"], {**env, **step.get("env", {})}, matrix, f"jobs.{name}")
    return commands


def _gitlab_commands(doc: dict) -> list[Command]:
    commands = []
    for name, job in doc.items():
        if not isinstance(job, dict) or name in ("default", "variables"):
            continue
        env = {**doc.get("variables", {}), **job.get("variables", {}), "CI_PROJECT_DIR": "/builds/project"}
        if "parallel" in job:
            env |= {"CI_NODE_INDEX": "1", "CI_NODE_TOTAL": str(job["parallel"])}
        for key in ("before_script", "script", "after_script"):
            for script in _scripts(job.get(key)):
                commands += _drover_commands(script, env, {}, f"{name}.{key}")
    return commands


def _buildkite_commands(doc: dict) -> list[Command]:
    commands = []
    for step in doc["steps"]:
        if not isinstance(step, dict):
            continue
        env = {**doc.get("env", {}), **step.get("env", {})}
        if "parallelism" in step:
            env |= {"BUILDKITE_PARALLEL_JOB": "0", "BUILDKITE_PARALLEL_JOB_COUNT": str(step["parallelism"])}
        for key in ("command", "commands"):
            for script in _scripts(step.get(key)):
                commands += _drover_commands(script, env, {}, step.get("label", "step"))
    return commands


EXTRACTORS = {
    "github-actions.yml": _github_commands,
    "github-actions-queue.yml": _github_commands,
    "gitlab-ci.yml": _gitlab_commands,
    "buildkite.yml": _buildkite_commands,
}


def _load(name: str) -> dict:
    path = EXAMPLES_DIR / name
    assert path.is_file(), f"missing CI example {path}"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(doc, dict), f"{name}: expected a YAML mapping at the top"
    return doc


def check_args(drover: str, argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([drover, "--check-args", *argv[1:]], cwd=cwd, env=h.clean_env(env),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_is_valid_yaml(name):
    _load(name)


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_commands_parse_with_the_real_cli(name, drover, tmp_path):
    commands = EXTRACTORS[name](_load(name))
    subcommands = {command.argv[1] for command in commands if len(command.argv) > 1}
    expected = SUBCOMMANDS.get(name, {"run", "merge"})
    assert expected <= subcommands, f"{name}: expected drover {sorted(expected)}, found {commands}"
    for command in commands:
        result = check_args(drover, command.argv, command.env, tmp_path)
        assert result.returncode == 0, f"{command}\nexit {result.returncode}\n{result.stdout}{result.stderr}"
    assert not list(tmp_path.iterdir()), "--check-args must not run anything"


def test_github_matrix_matches_total_shards():
    doc = _load("github-actions.yml")
    shards = doc["jobs"]["test"]["strategy"]["matrix"]["shard"]
    assert shards == list(range(int(doc["env"]["TOTAL_SHARDS"])))


def test_check_args_rejects_what_ci_would_trip_on(drover, tmp_path):
    # The lint above is only worth something if --check-args really validates.
    bad = [
        (["drover", "run", "--no-such-flag"], {}),
        (["drover", "run", "--shard=4", "--total-shards=4"], {}),
        (["drover", "merge", "reports/a.xml"], {}),  # no -o
        (["drover", "run"], {"CI_NODE_INDEX": "0", "CI_NODE_TOTAL": "4"}),  # GitLab's index is 1-based
    ]
    for argv, env in bad:
        result = check_args(drover, argv, env, tmp_path)
        assert result.returncode == 4, f"{argv} {env}: exit {result.returncode}\n{result.stdout}{result.stderr}"
        assert "terminate called" not in result.stderr
