"""Static shards (`--shard=i --total-shards=N`) each run their part in a separate
copy of the suite, as CI matrix jobs would; together they cover the suite
exactly once, and `drover merge` proves it (and catches a missing or duplicated
shard)."""
from __future__ import annotations

import collections
import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import drover_helpers as h

SHARDS = 3


class ShardRuns:
    def __init__(self, base: Path):
        self.base = base
        baseline_dir = h.copy_tree(h.SUITES_DIR / "outcomes", base / "baseline")
        self.nodeids = h.collect_nodeids(baseline_dir)
        self.pytest_xml = base / "pytest.xml"
        h.run_pytest(baseline_dir, "--junitxml", str(self.pytest_xml))
        self.results, self.xmls = [], []
        for i in range(SHARDS):
            suite = h.copy_tree(h.SUITES_DIR / "outcomes", base / f"shard{i}")
            xml = base / f"shard{i}.xml"
            self.results.append(h.run_drover(suite, "-n", "1", f"--shard={i}", f"--total-shards={SHARDS}",
                                             "--junitxml", str(xml)))
            self.xmls.append(xml)

    def junits(self) -> list[h.Junit]:
        for result, xml in zip(self.results, self.xmls):
            assert xml.is_file(), f"shard wrote no JUnit report\n{result.describe()}"
        return [h.parse_junit(x) for x in self.xmls]

    def merge(self, reports: list[Path], name: str) -> tuple[h.RunResult, Path]:
        out = self.base / name
        return h.run_drover_tool(self.base, "merge", *map(str, reports), "-o", str(out)), out


@pytest.fixture(scope="module")
def shards(drover, module_dir) -> ShardRuns:
    return ShardRuns(module_dir)


def test_shards_exit_like_pytest(shards):
    for result in shards.results:
        assert result.rc in (0, 1), result.describe()
        assert h.summary_line(result.stdout) is not None, result.describe()


def test_shard_properties(shards):
    expected_hash = h.collection_hash(shards.nodeids)
    for i, junit in enumerate(shards.junits()):
        assert junit.property("drover.shard_index") == str(i)
        assert junit.property("drover.total_shards") == str(SHARDS)
        assert junit.property("drover.collection_hash") == expected_hash


def test_assignments_cover_every_test_exactly_once(shards):
    assigned = collections.Counter()
    for junit in shards.junits():
        assigned.update(junit.property_values("drover.assigned"))
    assert assigned == collections.Counter(shards.nodeids)
    # Every shard got work.
    assert all(j.property_values("drover.assigned") for j in shards.junits())


def test_shard_results_together_equal_pytest(shards):
    together = collections.Counter()
    for junit in shards.junits():
        together.update(junit.outcome_multiset(include_collection=False))
    expected = h.parse_junit(shards.pytest_xml).outcome_multiset(include_collection=False)
    diff = h.multiset_diff(expected, together)
    assert not diff, diff


def test_merge_equals_pytest(shards):
    result, out = shards.merge(shards.xmls, "merged.xml")
    assert result.rc == 0, result.describe()
    merged = h.parse_junit(out)
    diff = h.multiset_diff(h.parse_junit(shards.pytest_xml).outcome_multiset(), merged.outcome_multiset())
    assert not diff, diff


def test_merge_of_shards_in_any_order(shards):
    result, out = shards.merge(list(reversed(shards.xmls)), "merged-reversed.xml")
    assert result.rc == 0, result.describe()
    assert h.parse_junit(out).outcome_multiset() == h.parse_junit(shards.pytest_xml).outcome_multiset()


def test_merge_catches_missing_shard(shards):
    result, _ = shards.merge(shards.xmls[:2], "missing.xml")
    assert result.rc != 0, result.describe()
    assert "shard" in result.stderr.lower() or "missing" in result.stderr.lower(), result.describe()
    assert "terminate called" not in result.output


def test_merge_catches_duplicate_shard(shards):
    copy = shards.base / "shard0-again.xml"
    shutil.copy(shards.xmls[0], copy)
    result, _ = shards.merge([*shards.xmls, copy], "duplicate.xml")
    assert result.rc != 0, result.describe()
    assert "terminate called" not in result.output


def test_merge_catches_missing_test(shards):
    # Drop one testcase from shard 1, as if the job died before writing it.
    broken = shards.base / "shard1-truncated.xml"
    tree = ET.parse(shards.xmls[1])
    suite = next(tree.getroot().iter("testsuite"))
    suite.remove(next(tc for tc in suite.iter("testcase") if tc.get("classname")))
    tree.write(broken, encoding="utf-8", xml_declaration=True)
    assert len(h.parse_junit(broken).cases) == len(h.parse_junit(shards.xmls[1]).cases) - 1
    result, _ = shards.merge([shards.xmls[0], broken, shards.xmls[2]], "missing-test.xml")
    assert result.rc != 0, result.describe()


@pytest.mark.parametrize("env,shard", [
    ({"CI_NODE_INDEX": "1", "CI_NODE_TOTAL": str(SHARDS)}, 0),        # GitLab: 1-based
    ({"CIRCLE_NODE_INDEX": "2", "CIRCLE_NODE_TOTAL": str(SHARDS)}, 2),  # CircleCI: 0-based
    ({"BUILDKITE_PARALLEL_JOB": "1", "BUILDKITE_PARALLEL_JOB_COUNT": str(SHARDS)}, 1),  # Buildkite: 0-based
], ids=["gitlab", "circleci", "buildkite"])
def test_ci_variables_pick_the_shard(shards, copy_suite, tmp_path, env, shard):
    suite = copy_suite("outcomes")
    result = h.run_drover(suite, "-n", "1", "--junitxml", str(tmp_path / "ci.xml"), env=env)
    assert result.rc in (0, 1), result.describe()
    junit = h.parse_junit(tmp_path / "ci.xml")
    assert junit.property("drover.shard_index") == str(shard)
    assert junit.property("drover.total_shards") == str(SHARDS)
    assert sorted(junit.property_values("drover.assigned")) == \
        sorted(shards.junits()[shard].property_values("drover.assigned"))


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def test_plan_json_assigns_every_test_once(shards, tmp_path):
    suite = h.copy_tree(h.SUITES_DIR / "outcomes", tmp_path / "plan")
    # `drover plan` has no --python: put the interpreter with pytest first on PATH.
    env = h.clean_env({"PATH": f"{Path(h.PY).parent}:{h.clean_env()['PATH']}"})
    result = h.run_process(h.drover_command("--total-shards", str(SHARDS), "--json", subcommand="plan"),
                           suite, env, 60)
    assert result.rc == 0, result.describe()
    strings = collections.Counter(_strings(json.loads(result.stdout)))
    assert {n: strings[n] for n in shards.nodeids} == dict.fromkeys(shards.nodeids, 1)
