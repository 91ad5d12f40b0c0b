#include "common/planner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <set>
#include <string>

namespace drover::common {
namespace {

// prefix + n. (Not `"literal" + std::to_string(n)`: GCC 12 at -O3 reports a bogus
// -Wrestrict for it, PR105651, which -Werror turns into a build failure.)
std::string numbered(std::string_view prefix, long long n) {
  std::string out(prefix);
  out += std::to_string(n);
  return out;
}

// "dir/test_f3.py::TestK::test_n" style items; cls may be empty.
TestItem item(const std::string& file, const std::string& cls, const std::string& name) {
  TestItem out;
  out.file = file;
  out.cls = cls;
  out.nodeid = file + "::" + (cls.empty() ? "" : cls + "::") + name;
  return out;
}

// `files` files with `per_file` module-level tests each.
Collection suite(int files, int per_file) {
  Collection collection;
  for (int f = 0; f < files; ++f) {
    for (int t = 0; t < per_file; ++t) {
      collection.items.push_back(item(numbered("test_f", f) + ".py", "", numbered("test_", t)));
    }
  }
  return collection;
}

std::vector<TestIndex> all_of(const Collection& collection) {
  std::vector<TestIndex> all(collection.items.size());
  std::iota(all.begin(), all.end(), TestIndex{0});
  return all;
}

// Every test of `expected` exactly once across the units.
void expect_partition(const std::vector<std::vector<TestIndex>>& parts, std::vector<TestIndex> expected) {
  std::vector<TestIndex> seen;
  for (const auto& part : parts) seen.insert(seen.end(), part.begin(), part.end());
  std::sort(seen.begin(), seen.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(seen, expected);
}

std::vector<std::vector<TestIndex>> tests_of(const std::vector<WorkUnit>& units) {
  std::vector<std::vector<TestIndex>> out;
  for (const WorkUnit& unit : units) out.push_back(unit.tests);
  return out;
}

std::vector<std::vector<TestIndex>> tests_of(const std::vector<Shard>& shards) {
  std::vector<std::vector<TestIndex>> out;
  for (const Shard& shard : shards) out.push_back(shard.tests);
  return out;
}

double imbalance(const std::vector<Shard>& shards) {
  double total = 0.0;
  double max = 0.0;
  for (const Shard& shard : shards) {
    total += shard.estimate;
    max = std::max(max, shard.estimate);
  }
  return max / (total / static_cast<double>(shards.size()));
}

// --- group-by words ----------------------------------------------------------

TEST(GroupBy, ParsesPytestStyleWords) {
  EXPECT_EQ(parse_group_by("none").value(), GroupBy::none);
  EXPECT_EQ(parse_group_by("file").value(), GroupBy::file);
  EXPECT_EQ(parse_group_by("class").value(), GroupBy::cls);
  for (GroupBy g : {GroupBy::none, GroupBy::file, GroupBy::cls}) {
    EXPECT_EQ(parse_group_by(to_string(g)).value(), g);
  }
  auto bad = parse_group_by("module");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, ErrorCode::usage);
  EXPECT_EQ(bad.error().message, "invalid --group-by 'module' (choose from none, file, class)");
}

// --- estimates -----------------------------------------------------------------

TEST(Estimates, RecordedThenFileMeanThenMedianThenDefault) {
  Collection collection;
  collection.items = {item("a.py", "", "t1"), item("a.py", "", "t2"), item("a.py", "", "new"),
                      item("b.py", "", "t1"), item("c.py", "", "new")};
  const Durations durations{{"a.py::t1", 1.0}, {"a.py::t2", 3.0}, {"b.py::t1", 10.0},
                            {"gone.py::t", 1000.0}};  // stale: not in the collection
  const std::vector<double> estimates = estimate_durations(collection, durations);
  ASSERT_EQ(estimates.size(), 5u);
  EXPECT_DOUBLE_EQ(estimates[0], 1.0);
  EXPECT_DOUBLE_EQ(estimates[1], 3.0);
  EXPECT_DOUBLE_EQ(estimates[2], 2.0);  // mean of a.py's recorded tests
  EXPECT_DOUBLE_EQ(estimates[3], 10.0);
  EXPECT_DOUBLE_EQ(estimates[4], 3.0);  // median of {1, 3, 10}; the stale 1000 is ignored
}

TEST(Estimates, MedianOfEvenCountIsMeanOfMiddlePair) {
  Collection collection;
  collection.items = {item("a.py", "", "t"), item("b.py", "", "t"), item("c.py", "", "t"),
                      item("d.py", "", "t"), item("e.py", "", "t")};
  const Durations durations{{"a.py::t", 1.0}, {"b.py::t", 2.0}, {"c.py::t", 4.0}, {"d.py::t", 100.0}};
  EXPECT_DOUBLE_EQ(estimate_durations(collection, durations)[4], 3.0);
}

TEST(Estimates, NothingRecordedGivesDefault) {
  const Collection collection = suite(2, 2);
  const std::vector<double> estimates = estimate_durations(collection, {{"other.py::x", 5.0}});
  for (double e : estimates) EXPECT_DOUBLE_EQ(e, k_default_estimate);
}

// --- dynamic units ---------------------------------------------------------------

TEST(Units, FilesStayWholeAndComeLongestFirst) {
  const Collection collection = suite(6, 3);  // files of 3 tests
  std::vector<double> estimates(collection.items.size(), 1.0);
  for (TestIndex i = 3; i < 6; ++i) estimates[i] = 2.0;   // file 1: 6 s
  for (TestIndex i = 12; i < 15; ++i) estimates[i] = 2.0;  // file 4: 6 s
  // 24 s on 1 worker: nothing to balance, so no file is cut.
  const auto units = make_units(collection, all_of(collection), estimates, GroupBy::file, 1);
  ASSERT_EQ(units.size(), 6u);
  EXPECT_EQ(units[0].group, "test_f1.py");  // 6 s, first by collection order among equals
  EXPECT_EQ(units[1].group, "test_f4.py");
  EXPECT_EQ(units[2].group, "test_f0.py");
  EXPECT_EQ(units[5].group, "test_f5.py");
  EXPECT_EQ(units[0].tests, (std::vector<TestIndex>{3, 4, 5}));
  EXPECT_DOUBLE_EQ(units[0].estimate, 6.0);
  EXPECT_EQ(units[0].test_estimates, (std::vector<double>{2.0, 2.0, 2.0}));  // each test's own
  EXPECT_EQ(units[2].test_estimates, (std::vector<double>{1.0, 1.0, 1.0}));
  expect_partition(tests_of(units), all_of(collection));
  // On 2 workers the limit is 24 / (2 * 4) = 3 s: each 6 s file becomes two chunks,
  // cut at the test whose midpoint crosses 3 s (2 s + 4 s; tests are never split).
  const auto two = make_units(collection, all_of(collection), estimates, GroupBy::file, 2);
  ASSERT_EQ(two.size(), 8u);
  EXPECT_EQ(two[0].tests, (std::vector<TestIndex>{4, 5}));
  EXPECT_EQ(two[1].tests, (std::vector<TestIndex>{13, 14}));
  EXPECT_EQ(two[2].tests, (std::vector<TestIndex>{0, 1, 2}));  // 3 s ties: collection order
  EXPECT_EQ(two[3].tests, (std::vector<TestIndex>{6, 7, 8}));
  EXPECT_EQ(two[6].tests, (std::vector<TestIndex>{3}));
  EXPECT_EQ(two[7].tests, (std::vector<TestIndex>{12}));
  EXPECT_EQ(two[6].group, "test_f1.py");
}

TEST(Units, ClassGroupingSeparatesClassesAndModuleFunctions) {
  Collection collection;
  collection.items = {item("a.py", "", "f1"), item("a.py", "TestX", "m1"), item("a.py", "TestX", "m2"),
                      item("a.py", "TestY", "m1"), item("a.py", "", "f2")};
  const std::vector<double> estimates(5, 1.0);
  const auto units = make_units(collection, all_of(collection), estimates, GroupBy::cls, 1);
  ASSERT_EQ(units.size(), 3u);
  EXPECT_EQ(units[0].group, "a.py");  // f1 + f2, 2 s, first test 0
  EXPECT_EQ(units[0].tests, (std::vector<TestIndex>{0, 4}));
  EXPECT_EQ(units[1].group, "a.py::TestX");
  EXPECT_EQ(units[2].group, "a.py::TestY");
}

TEST(Units, BigGroupIsCutIntoConsecutiveChunks) {
  // One 40 s file among eight 1 s files, 4 workers: total 48 s, limit 48/16 = 3 s.
  Collection collection = suite(8, 1);
  for (int t = 0; t < 40; ++t) collection.items.push_back(item("test_big.py", "", numbered("t", t)));
  const std::vector<double> estimates(collection.items.size(), 1.0);
  const auto units = make_units(collection, all_of(collection), estimates, GroupBy::file, 4);
  std::vector<WorkUnit> big;
  for (const WorkUnit& unit : units) {
    EXPECT_LE(unit.estimate, 3.0 + 1e-9);
    if (unit.group == "test_big.py") big.push_back(unit);
  }
  ASSERT_GE(big.size(), 14u);
  std::vector<TestIndex> joined;
  for (const WorkUnit& unit : big) {
    EXPECT_TRUE(std::is_sorted(unit.tests.begin(), unit.tests.end()));
    EXPECT_EQ(unit.tests.back() - unit.tests.front() + 1, unit.tests.size());  // consecutive
    joined.insert(joined.end(), unit.tests.begin(), unit.tests.end());
  }
  std::sort(joined.begin(), joined.end());
  EXPECT_EQ(joined.size(), 40u);
  EXPECT_EQ(joined.front(), 8u);
  for (size_t i = 1; i < units.size(); ++i) EXPECT_GE(units[i - 1].estimate, units[i].estimate);
  expect_partition(tests_of(units), all_of(collection));
}

TEST(Units, SmallGroupsAreNotCutEvenOnManyWorkers) {
  // 20 files of 10 x 50 ms on 64 workers: a quarter share is tiny, but no file
  // reaches 1 s, so none is cut (module fixtures stay set up once).
  const Collection collection = suite(20, 10);
  const std::vector<double> estimates(collection.items.size(), 0.05);
  const auto units = make_units(collection, all_of(collection), estimates, GroupBy::file, 64);
  EXPECT_EQ(units.size(), 20u);
}

TEST(Units, SelectionOrderAndDuplicatesDoNotMatter) {
  const Collection collection = suite(10, 7);
  std::mt19937 rng(7);
  std::lognormal_distribution<double> dist(-2.0, 1.5);
  std::vector<double> estimates(collection.items.size());
  for (double& e : estimates) e = dist(rng);
  std::vector<TestIndex> selection;
  for (TestIndex i = 0; i < collection.items.size(); i += 2) selection.push_back(i);
  for (GroupBy g : {GroupBy::none, GroupBy::file, GroupBy::cls}) {
    const auto reference = make_units(collection, selection, estimates, g, 3);
    expect_partition(tests_of(reference), selection);
    std::vector<TestIndex> shuffled = selection;
    shuffled.push_back(selection[3]);
    shuffled.push_back(9999);  // out of range: dropped
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    const auto again = make_units(collection, shuffled, estimates, g, 3);
    EXPECT_EQ(tests_of(again), tests_of(reference)) << to_string(g);
  }
}

TEST(Units, NoneBatchesTinyTestsButKeepsTheTailFine) {
  const Collection collection = suite(5, 100);
  // 500 trivial tests: a few batches, not 500 round-trips.
  const std::vector<double> tiny(collection.items.size(), 0.001);
  const auto few = make_units(collection, all_of(collection), tiny, GroupBy::none, 4);
  EXPECT_LE(few.size(), 12u);
  EXPECT_GE(few.size(), 8u);
  for (const WorkUnit& unit : few) {
    EXPECT_EQ(unit.group, "");
    EXPECT_EQ(unit.tests.back() - unit.tests.front() + 1, unit.tests.size());
  }
  expect_partition(tests_of(few), all_of(collection));
  // 500 one-second tests on 4 workers: units of at most 500/64 s, so many units.
  const std::vector<double> slow(collection.items.size(), 1.0);
  const auto many = make_units(collection, all_of(collection), slow, GroupBy::none, 4);
  EXPECT_GE(many.size(), 64u);
  for (const WorkUnit& unit : many) EXPECT_LE(unit.estimate, 500.0 / 64 + 1e-9);
}

TEST(Units, DurationsInsertionOrderDoesNotMatter) {
  const Collection collection = suite(12, 9);
  std::vector<std::pair<std::string, double>> entries;
  std::mt19937 rng(11);
  std::lognormal_distribution<double> dist(-1.0, 1.2);
  for (size_t i = 0; i < collection.items.size(); i += 3) entries.emplace_back(collection.items[i].nodeid, dist(rng));
  Durations forward(entries.begin(), entries.end());
  std::shuffle(entries.begin(), entries.end(), rng);
  Durations shuffled;
  for (const auto& [k, v] : entries) shuffled.emplace(k, v);
  const auto a = make_units(collection, all_of(collection), estimate_durations(collection, forward), GroupBy::file, 4);
  const auto b = make_units(collection, all_of(collection), estimate_durations(collection, shuffled), GroupBy::file, 4);
  EXPECT_EQ(tests_of(a), tests_of(b));
}

// --- static shards ----------------------------------------------------------------

// 40 files with 2-20 tests each, lognormal durations, a few heavy files.
struct Skewed {
  Collection collection;
  std::vector<double> estimates;
};

Skewed skewed_suite(unsigned seed) {
  Skewed s;
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> count(2, 20);
  std::lognormal_distribution<double> dist(-1.5, 1.3);
  for (int f = 0; f < 40; ++f) {
    const int n = count(rng);
    const double weight = f % 13 == 0 ? 8.0 : 1.0;
    for (int t = 0; t < n; ++t) {
      s.collection.items.push_back(item(numbered("tests/test_m", f) + ".py", t % 3 ? "TestK" : "", numbered("test_", t)));
      s.estimates.push_back(weight * dist(rng));
    }
  }
  return s;
}

TEST(Shards, LptBalancesSkewedSuiteWithinTarget) {
  for (unsigned seed : {1u, 2u, 3u, 4u, 5u}) {
    const Skewed s = skewed_suite(seed);
    for (GroupBy g : {GroupBy::file, GroupBy::cls, GroupBy::none}) {
      const auto shards = plan_shards(s.collection, s.estimates, g, 4);
      ASSERT_EQ(shards.size(), 4u);
      EXPECT_LE(imbalance(shards), k_shard_balance_target) << "seed " << seed << " " << to_string(g);
      expect_partition(tests_of(shards), all_of(s.collection));
      for (const Shard& shard : shards) EXPECT_TRUE(std::is_sorted(shard.tests.begin(), shard.tests.end()));
    }
  }
}

TEST(Shards, DeterministicAcrossCalls) {
  const Skewed s = skewed_suite(9);
  const auto a = plan_shards(s.collection, s.estimates, GroupBy::file, 5);
  const auto b = plan_shards(s.collection, s.estimates, GroupBy::file, 5);
  EXPECT_EQ(tests_of(a), tests_of(b));
}

TEST(Shards, GroupsStayWholeWhenThatBalances) {
  // 8 files of 1 s tests with sizes 4,4,3,3,2,2,1,1 (20 s) onto 2 shards: exact 10/10.
  Collection collection;
  const int sizes[] = {4, 4, 3, 3, 2, 2, 1, 1};
  for (int f = 0; f < 8; ++f) {
    for (int t = 0; t < sizes[f]; ++t) collection.items.push_back(item(numbered("f", f) + ".py", "", numbered("t", t)));
  }
  const std::vector<double> estimates(collection.items.size(), 1.0);
  const auto shards = plan_shards(collection, estimates, GroupBy::file, 2);
  EXPECT_DOUBLE_EQ(shards[0].estimate, 10.0);
  EXPECT_DOUBLE_EQ(shards[1].estimate, 10.0);
  for (const Shard& shard : shards) {
    std::set<std::string> files;
    for (TestIndex i : shard.tests) files.insert(collection.items[i].file);
    size_t tests = 0;
    for (const std::string& f : files) tests += static_cast<size_t>(sizes[f[1] - '0']);
    EXPECT_EQ(tests, shard.tests.size());  // every file it touches is entirely here
  }
}

TEST(Shards, GroupBiggerThanIdealShardIsSplit) {
  // One file holds 90% of the time: kept whole, one shard would carry 3.6x the mean.
  Collection collection = suite(10, 1);
  for (int t = 0; t < 90; ++t) collection.items.push_back(item("test_huge.py", "", numbered("t", t)));
  const std::vector<double> estimates(collection.items.size(), 1.0);
  const auto shards = plan_shards(collection, estimates, GroupBy::file, 4);
  EXPECT_LE(imbalance(shards), k_shard_balance_target);
  int holding_huge = 0;
  for (const Shard& shard : shards) {
    holding_huge += std::any_of(shard.tests.begin(), shard.tests.end(),
                                [&](TestIndex i) { return collection.items[i].file == "test_huge.py"; });
  }
  EXPECT_GE(holding_huge, 3);
}

TEST(Shards, MoreShardsThanTestsLeavesEmptyShards) {
  const Collection collection = suite(1, 3);
  const std::vector<double> estimates{3.0, 1.0, 2.0};
  const auto shards = plan_shards(collection, estimates, GroupBy::none, 5);
  ASSERT_EQ(shards.size(), 5u);
  EXPECT_EQ(shards[0].tests, std::vector<TestIndex>{0});
  EXPECT_EQ(shards[1].tests, std::vector<TestIndex>{2});
  EXPECT_EQ(shards[2].tests, std::vector<TestIndex>{1});
  EXPECT_TRUE(shards[3].tests.empty());
  EXPECT_TRUE(shards[4].tests.empty());
  EXPECT_DOUBLE_EQ(shards[4].estimate, 0.0);
}

TEST(Shards, OneShardHoldsEverythingInCollectionOrder) {
  const Skewed s = skewed_suite(4);
  for (int n : {1, 0, -3}) {
    const auto shards = plan_shards(s.collection, s.estimates, GroupBy::file, n);
    ASSERT_EQ(shards.size(), 1u);
    EXPECT_EQ(shards[0].tests, all_of(s.collection));
  }
}

TEST(Shards, ZeroDurationsSpreadByCount) {
  const Collection collection = suite(1, 8);
  const std::vector<double> zeros(8, 0.0);
  const auto shards = plan_shards(collection, zeros, GroupBy::none, 4);
  for (const Shard& shard : shards) EXPECT_EQ(shard.tests.size(), 2u);
}

TEST(Shards, EmptyCollection) {
  const auto shards = plan_shards(Collection{}, {}, GroupBy::file, 3);
  ASSERT_EQ(shards.size(), 3u);
  for (const Shard& shard : shards) EXPECT_TRUE(shard.tests.empty());
  EXPECT_TRUE(make_units(Collection{}, {}, {}, GroupBy::file, 2).empty());
}

}  // namespace
}  // namespace drover::common
