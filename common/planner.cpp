#include "common/planner.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <set>
#include <utility>

namespace drover::common {
namespace {

// Planning runs on integer microseconds: sums are exact whatever the order, so
// every CI job of a matrix computes the very same split. A weight is never
// zero, so tests recorded as 0.0 s still spread across shards by count.
using Micros = std::int64_t;

Micros to_micros(double seconds) {
  if (!std::isfinite(seconds) || seconds <= 0.0) return 1;
  const double micros = std::round(seconds * 1e6);
  // ~11.6 days per test caps absurd values, so a million tests still sum in 64 bits.
  if (micros >= 1e12) return static_cast<Micros>(1e12);
  return std::max<Micros>(1, static_cast<Micros>(micros));
}

double to_seconds(Micros micros) { return static_cast<double>(micros) / 1e6; }

// A run of tests that must (or would like to) go to the same worker.
struct Piece {
  std::vector<TestIndex> tests;  // collection order
  Micros weight = 0;
  std::string group;
};

std::string group_key(const TestItem& item, GroupBy group_by) {
  switch (group_by) {
    case GroupBy::none:
      return {};
    case GroupBy::file:
      return item.file;
    case GroupBy::cls:
      return item.cls.empty() ? item.file : item.file + "::" + item.cls;
  }
  return {};
}

// Groups of the selected tests, each in collection order, listed by first test.
// With GroupBy::none every test is its own group.
std::vector<Piece> make_groups(const Collection& collection, std::vector<TestIndex> selection,
                               const std::vector<Micros>& weights, GroupBy group_by) {
  std::sort(selection.begin(), selection.end());
  selection.erase(std::unique(selection.begin(), selection.end()), selection.end());
  std::vector<Piece> groups;
  std::map<std::string, size_t> by_key;  // key -> position in `groups`
  for (TestIndex index : selection) {
    if (index >= collection.items.size()) continue;
    size_t position = groups.size();
    if (group_by == GroupBy::none) {
      groups.emplace_back();
    } else {
      auto [it, inserted] = by_key.emplace(group_key(collection.items[index], group_by), position);
      if (inserted) {
        groups.emplace_back();
        groups.back().group = it->first;
      }
      position = it->second;
    }
    Piece& piece = groups[position];
    piece.tests.push_back(index);
    piece.weight += weights[index];
  }
  return groups;
}

// Cuts a piece into ceil(weight / limit) consecutive chunks of about equal weight.
// A test belongs to the chunk its midpoint falls in, so chunks stay in
// collection order and a single huge test is never split (it may stand alone).
void cut_piece(const Piece& piece, Micros limit, const std::vector<Micros>& weights,
               std::vector<Piece>& out) {
  if (limit <= 0 || piece.weight <= limit || piece.tests.size() < 2) {
    out.push_back(piece);
    return;
  }
  const Micros chunks = (piece.weight + limit - 1) / limit;
  const Micros target = std::max<Micros>(1, piece.weight / chunks);
  Micros start = 0;
  Micros current = -1;
  for (TestIndex index : piece.tests) {
    const Micros w = weights[index];
    const Micros slot = std::min<Micros>(chunks - 1, (start + w / 2) / target);
    if (slot != current) {
      out.push_back(Piece{{}, 0, piece.group});
      current = slot;
    }
    out.back().tests.push_back(index);
    out.back().weight += w;
    start += w;
  }
}

std::vector<Piece> cut_all(const std::vector<Piece>& groups, Micros limit,
                           const std::vector<Micros>& weights) {
  std::vector<Piece> pieces;
  pieces.reserve(groups.size());
  for (const Piece& group : groups) cut_piece(group, limit, weights, pieces);
  return pieces;
}

// Longest first; equal weights keep collection order (first test index).
void sort_lpt(std::vector<Piece>& pieces) {
  std::stable_sort(pieces.begin(), pieces.end(), [](const Piece& a, const Piece& b) {
    if (a.weight != b.weight) return a.weight > b.weight;
    return a.tests.front() < b.tests.front();
  });
}

std::vector<Micros> weights_of(const std::vector<double>& estimates, size_t size) {
  std::vector<Micros> weights(size, to_micros(k_default_estimate));
  for (size_t i = 0; i < size && i < estimates.size(); ++i) weights[i] = to_micros(estimates[i]);
  return weights;
}

struct ShardPlan {
  std::vector<std::vector<TestIndex>> tests;
  std::vector<Micros> loads;
  Micros max_load = 0;
};

// LPT: each piece, longest first, onto the least-loaded shard (lowest index on ties).
ShardPlan assign_lpt(std::vector<Piece> pieces, int total_shards) {
  sort_lpt(pieces);
  ShardPlan plan;
  plan.tests.resize(static_cast<size_t>(total_shards));
  plan.loads.assign(static_cast<size_t>(total_shards), 0);
  std::set<std::pair<Micros, int>> open;
  for (int i = 0; i < total_shards; ++i) open.emplace(0, i);
  for (Piece& piece : pieces) {
    auto [load, shard] = *open.begin();
    open.erase(open.begin());
    auto& tests = plan.tests[static_cast<size_t>(shard)];
    tests.insert(tests.end(), piece.tests.begin(), piece.tests.end());
    load += piece.weight;
    plan.loads[static_cast<size_t>(shard)] = load;
    open.emplace(load, shard);
  }
  for (Micros load : plan.loads) plan.max_load = std::max(plan.max_load, load);
  return plan;
}

}  // namespace

Result<GroupBy> parse_group_by(std::string_view word) {
  if (word == "none") return GroupBy::none;
  if (word == "file") return GroupBy::file;
  if (word == "class") return GroupBy::cls;
  return fail(ErrorCode::usage,
              "invalid --group-by '" + std::string(word) + "' (choose from none, file, class)");
}

std::string_view to_string(GroupBy group_by) {
  switch (group_by) {
    case GroupBy::none:
      return "none";
    case GroupBy::file:
      return "file";
    case GroupBy::cls:
      return "class";
  }
  return "none";
}

std::vector<double> estimate_durations(const Collection& collection, const Durations& durations) {
  const size_t n = collection.items.size();
  std::vector<double> estimates(n, 0.0);
  std::vector<bool> known(n, false);
  std::map<std::string, std::pair<double, size_t>> per_file;  // file -> (sum, count)
  std::vector<double> recorded;
  for (size_t i = 0; i < n; ++i) {
    const TestItem& item = collection.items[i];
    auto it = durations.find(item.nodeid);
    if (it == durations.end()) continue;
    estimates[i] = it->second;
    known[i] = true;
    auto& [sum, count] = per_file[item.file];
    sum += it->second;
    ++count;
    recorded.push_back(it->second);
  }

  double fallback = k_default_estimate;
  if (!recorded.empty()) {
    std::sort(recorded.begin(), recorded.end());
    const size_t mid = recorded.size() / 2;
    fallback = recorded.size() % 2 == 1 ? recorded[mid] : (recorded[mid - 1] + recorded[mid]) / 2.0;
  }
  for (size_t i = 0; i < n; ++i) {
    if (known[i]) continue;
    auto it = per_file.find(collection.items[i].file);
    estimates[i] = it != per_file.end() ? it->second.first / static_cast<double>(it->second.second)
                                        : fallback;
  }
  return estimates;
}

std::vector<WorkUnit> make_units(const Collection& collection, std::span<const TestIndex> selection,
                                 const std::vector<double>& estimates, GroupBy group_by, int slots) {
  const std::vector<Micros> weights = weights_of(estimates, collection.items.size());
  std::vector<Piece> groups = make_groups(
      collection, std::vector<TestIndex>(selection.begin(), selection.end()), weights, group_by);
  Micros total = 0;
  for (const Piece& group : groups) total += group.weight;
  const Micros workers = std::max(1, slots);

  std::vector<Piece> pieces;
  if (group_by == GroupBy::none) {
    // Nothing is shared between tests, so units are only batches that save a
    // dispatch round-trip per test: consecutive tests (neighbours usually share a
    // module) up to 1/16 of a worker's fair share, so the tail rebalances at a
    // fine grain, but never below 50 ms, so 500 trivial tests make ~10 units
    // rather than 500 round-trips.
    constexpr Micros k_batch_fraction = 16;
    constexpr Micros k_min_batch = 50'000;
    const Micros limit = std::max(k_min_batch, total / (workers * k_batch_fraction));
    Piece batch;
    for (const Piece& single : groups) {
      if (!batch.tests.empty() && batch.weight + single.weight > limit) {
        pieces.push_back(std::move(batch));
        batch = Piece{};
      }
      batch.tests.push_back(single.tests.front());
      batch.weight += single.weight;
    }
    if (!batch.tests.empty()) pieces.push_back(std::move(batch));
  } else {
    // Groups stay whole so module/class fixtures are set up once, unless a group
    // exceeds a quarter of one worker's fair share (total / (slots * 4)). Pulling
    // longest first, the makespan is at most the fair share plus the last unit
    // started (Graham's list-scheduling bound); with every unit below a quarter
    // share that tail is bounded by +25%, and in practice the last units are the
    // small ones. Cutting finer would repeat fixture setup for little gain.
    // A single worker has no tail to balance: nothing is cut. Nor is a group under
    // 1 s: cutting it saves less tail than a repeated module fixture may cost.
    constexpr Micros k_tail_fraction = 4;
    constexpr Micros k_min_cut = 1'000'000;
    const Micros limit =
        workers == 1 ? total : std::max(k_min_cut, total / (workers * k_tail_fraction));
    pieces = cut_all(groups, limit, weights);
  }
  sort_lpt(pieces);

  std::vector<WorkUnit> units;
  units.reserve(pieces.size());
  for (Piece& piece : pieces) {
    std::vector<double> test_estimates;
    test_estimates.reserve(piece.tests.size());
    for (TestIndex test : piece.tests) test_estimates.push_back(to_seconds(weights[test]));
    units.push_back(WorkUnit{std::move(piece.tests), to_seconds(piece.weight), std::move(piece.group),
                             std::move(test_estimates)});
  }
  return units;
}

std::vector<Shard> plan_shards(const Collection& collection, const std::vector<double>& estimates,
                               GroupBy group_by, int total_shards) {
  const int shards = std::max(1, total_shards);
  const std::vector<Micros> weights = weights_of(estimates, collection.items.size());
  std::vector<TestIndex> all(collection.items.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<TestIndex>(i);
  const std::vector<Piece> groups = make_groups(collection, std::move(all), weights, group_by);
  Micros total = 0;
  for (const Piece& group : groups) total += group.weight;

  // See planner.h: cut groups above the ideal load; while max/mean > 1.05, halve
  // the limit (down to ideal/32, where Graham's bound alone guarantees ~1.03 unless
  // single tests are too big) and keep the first plan within target, else the best.
  const Micros ideal = std::max<Micros>(1, (total + shards - 1) / shards);
  ShardPlan best;
  bool have_best = false;
  for (Micros divisor = 1; divisor <= k_max_split_divisor; divisor *= 2) {
    const Micros limit = std::max<Micros>(1, ideal / divisor);
    ShardPlan plan = assign_lpt(cut_all(groups, limit, weights), shards);
    const bool better = !have_best || plan.max_load < best.max_load;
    if (better) {
      best = std::move(plan);
      have_best = true;
    }
    const double mean = static_cast<double>(total) / shards;
    if (static_cast<double>(best.max_load) <= mean * k_shard_balance_target) break;
  }

  std::vector<Shard> result(static_cast<size_t>(shards));
  for (size_t i = 0; i < result.size(); ++i) {
    std::sort(best.tests[i].begin(), best.tests[i].end());
    result[i].tests = std::move(best.tests[i]);
    result[i].estimate = to_seconds(best.loads[i]);
  }
  return result;
}

}  // namespace drover::common
