#!/usr/bin/env python3
"""Static shard balance: `drover plan` against naive CI splits.

Generates a synthetic pytest suite (default 40 files, ~400 tests, some in
classes) and a pytest-split `.test_durations` for it with skewed lognormal
durations from a fixed seed, runs

    drover plan --total-shards N --durations FILE --json PATH

in the suite and compares the balance (max shard time / mean shard time) of
drover's plan with two splits a CI matrix often uses:

  round-robin    test i goes to shard i % N, in collection order
  by file count  consecutive files, the same number of files per shard

All three are scored with the same durations. drover's plan is also checked:
every collected test in exactly one shard, N shards. Exit status: 0 when
drover's max/mean is within --target (default 1.05), or equals the lower bound
when a single test is longer than the mean shard (then no split can reach the
target); 1 when it is not; 2 when drover fails or its plan is inconsistent.

Usage: /usr/bin/python3 bench/plan_balance.py --drover build/drover [--python /usr/bin/python3]
Standard library only; the suite's tests are never run (plan only collects).
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def make_suite(root: Path, files: int, tests: int, seed: int) -> tuple[list[str], dict[str, float], list[str]]:
    """Writes the suite; returns node ids in collection order, durations and each test's file."""
    rng = random.Random(seed)
    # Uneven file sizes around tests/files, at least 2 tests per file.
    weights = [rng.lognormvariate(0.0, 0.6) for _ in range(files)]
    scale = tests / sum(weights)
    counts = [max(2, round(w * scale)) for w in weights]
    (root / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    nodeids: list[str] = []
    owners: list[str] = []
    durations: dict[str, float] = {}
    for f, count in enumerate(counts):
        name = f"test_mod{f:03d}.py"  # zero-padded: pytest's collection order is generation order
        # Some modules are slow as a whole (integration-style): a per-file factor.
        file_factor = rng.lognormvariate(0.0, 1.0)
        in_class = count // 3 if f % 4 == 0 else 0  # every 4th file ends with a class
        lines = []
        for t in range(count - in_class):
            lines.append(f"def test_{t}():\n    pass\n")
            nodeids.append(f"{name}::test_{t}")
        if in_class:
            lines.append("class TestGroup:\n" + "".join(
                f"    def test_m{t}(self):\n        pass\n" for t in range(in_class)))
            nodeids.extend(f"{name}::TestGroup::test_m{t}" for t in range(in_class))
        (root / name).write_text("\n\n".join(lines), encoding="utf-8")
        for nodeid in nodeids[len(owners):]:
            # Mostly fast tests, a long tail of slow ones.
            durations[nodeid] = round(file_factor * rng.lognormvariate(-2.5, 1.4), 6)
            owners.append(name)
    return nodeids, durations, owners


def score(shards: list[list[str]], durations: dict[str, float]) -> tuple[float, float, float]:
    loads = [sum(durations[n] for n in shard) for shard in shards]
    mean = sum(loads) / len(loads)
    return max(loads), mean, (max(loads) / mean if mean > 0 else 1.0)


def files_cut(shards: list[list[str]]) -> int:
    """Files whose tests land on more than one shard (module fixtures set up more than once)."""
    seen: dict[str, set[int]] = {}
    for i, shard in enumerate(shards):
        for nodeid in shard:
            seen.setdefault(nodeid.split("::")[0], set()).add(i)
    return sum(1 for where in seen.values() if len(where) > 1)


def round_robin(nodeids: list[str], n: int) -> list[list[str]]:
    return [nodeids[i::n] for i in range(n)]


def by_file_count(nodeids: list[str], owners: list[str], n: int) -> list[list[str]]:
    files = list(dict.fromkeys(owners))
    shard_of = {f: i * n // len(files) for i, f in enumerate(files)}
    shards: list[list[str]] = [[] for _ in range(n)]
    for nodeid, owner in zip(nodeids, owners):
        shards[shard_of[owner]].append(nodeid)
    return shards


def run_drover(args: argparse.Namespace, root: Path, durations_path: Path) -> dict:
    plan_path = root / "plan.json"
    # drover runs inside the suite: a relative --drover path is taken from our cwd.
    drover = shutil.which(args.drover) if "/" not in args.drover else str(Path(args.drover).resolve())
    if drover is None:
        raise RuntimeError(f"{args.drover}: not found")
    cmd = [drover, "plan", "--total-shards", str(args.shards), "--durations", str(durations_path),
           "--group-by", args.group_by, "--json", str(plan_path)]
    if args.python:
        cmd += ["--python", args.python]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"drover plan exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    try:
        return json.loads(plan_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise RuntimeError(f"drover plan wrote no readable {plan_path}: {e}") from e


def check_plan(plan: dict, nodeids: list[str], shards: int) -> list[list[str]]:
    if plan.get("total_shards") != shards or len(plan.get("shards", [])) != shards:
        raise RuntimeError(f"expected {shards} shards, got {plan.get('total_shards')} / {len(plan.get('shards', []))}")
    ordered = sorted(plan["shards"], key=lambda s: s["index"])
    if [s["index"] for s in ordered] != list(range(shards)):
        raise RuntimeError("shard indices are not 0..N-1")
    out = [list(s["nodeids"]) for s in ordered]
    for s, ids in zip(ordered, out):
        if s["tests"] != len(ids):
            raise RuntimeError(f"shard {s['index']}: 'tests' is {s['tests']} but {len(ids)} node ids listed")
    planned = sorted(n for ids in out for n in ids)
    if planned != sorted(nodeids):
        missing = set(nodeids) - set(planned)
        raise RuntimeError(f"plan does not hold every test exactly once ({len(planned)} planned, "
                           f"{len(nodeids)} collected, {len(missing)} missing)")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drover", default="build/drover", help="drover binary")
    parser.add_argument("--python", default="/usr/bin/python3", help="interpreter with pytest (passed to drover)")
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--tests", type=int, default=400, help="approximate number of tests")
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--group-by", default="file", choices=["none", "file", "class"])
    parser.add_argument("--target", type=float, default=1.05, help="max/mean drover must reach")
    parser.add_argument("--keep", action="store_true", help="keep the generated suite and print its path")
    args = parser.parse_args()
    if args.shards < 1 or args.files < 1 or args.tests < 1:
        parser.error("--shards, --files and --tests must be >= 1")

    root = Path(tempfile.mkdtemp(prefix="drover_plan_balance_"))
    try:
        nodeids, durations, owners = make_suite(root, args.files, args.tests, args.seed)
        durations_path = root / ".test_durations"
        durations_path.write_text(json.dumps(durations, sort_keys=True, indent=4), encoding="utf-8")
        try:
            plan = run_drover(args, root, durations_path)
            drover_shards = check_plan(plan, nodeids, args.shards)
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2

        total = sum(durations.values())
        print(f"{len(nodeids)} tests in {len(set(owners))} files, {total:.2f}s in total, "
              f"longest test {max(durations.values()):.2f}s, {args.shards} shards, seed {args.seed}")
        rows = [("round-robin", round_robin(nodeids, args.shards)),
                ("by file count", by_file_count(nodeids, owners, args.shards)),
                (f"drover (group by {args.group_by})", drover_shards)]
        print(f"{'split':<26} {'max (s)':>9} {'mean (s)':>9} {'max/mean':>9} {'files cut':>10}")
        drover_ratio = 0.0
        for name, shards in rows:
            longest, mean, ratio = score(shards, durations)
            print(f"{name:<26} {longest:>9.2f} {mean:>9.2f} {ratio:>9.3f} {files_cut(shards):>10}")
            drover_ratio = ratio
        # No split beats the longest single test: max >= max(longest, mean).
        bound = max(max(durations.values()), total / args.shards) / (total / args.shards)
        print(f"{'lower bound':<26} {'':>9} {'':>9} {bound:>9.3f}")
        print(f"drover reported imbalance {plan.get('imbalance', float('nan')):.3f}")
        limit = max(args.target, bound + 1e-9)
        if drover_ratio > limit:
            print(f"FAIL: drover's max/mean {drover_ratio:.3f} > {limit:.3f}")
            return 1
        print(f"ok: drover's max/mean {drover_ratio:.3f} <= {limit:.3f}")
        return 0
    finally:
        if args.keep:
            print(f"suite kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
