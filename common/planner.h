// Turns a collection and duration history into work: units for the dynamic
// queue, or N static shards for a CI matrix.
//
// Everything here is a pure, deterministic function of its inputs: the same
// collection and durations give the same plan on any machine, whatever the
// hash seed, locale, file-system order or CPU count. Ties are broken by
// collection order. Thread-safety: free functions over values.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "common/collection.h"
#include "common/durations.h"
#include "common/error.h"

namespace drover::common {

enum class GroupBy { none, file, cls };

[[nodiscard]] Result<GroupBy> parse_group_by(std::string_view word);  // "none" | "file" | "class"
[[nodiscard]] std::string_view to_string(GroupBy group_by);

// Seconds per test (indexed like collection.items): the recorded duration; else
// the mean of its file's recorded tests; else the median of all recorded tests
// in the collection; else k_default_estimate. Entries for unknown node ids are ignored.
// (Planning itself works on whole microseconds, at least 1 per test, so sums are
// exact in any order and tests recorded as 0 s still spread by count.)
inline constexpr double k_default_estimate = 0.1;
[[nodiscard]] std::vector<double> estimate_durations(const Collection& collection,
                                                     const Durations& durations);

// A piece of work handed out as one lease: tests of one group, in collection order.
struct WorkUnit {
  std::vector<TestIndex> tests;
  double estimate = 0.0;  // seconds, sum over tests
  std::string group;      // "pkg/test_a.py" or "pkg/test_a.py::TestX"; "" for group-by none
  // Seconds per test, parallel to `tests`; empty: each test counts an equal share of `estimate`.
  std::vector<double> test_estimates;
};

// Units for a dynamic queue fed to `slots` workers, longest first (ties: lower first
// test index). Groups stay whole (module/class fixtures set up once) unless a group
// exceeds max(1 s, total / (slots * 4)), a quarter of one worker's fair share: then it is cut
// into consecutive chunks of about equal estimate (never with one slot: no tail). With GroupBy::none, consecutive
// tests are batched up to max(50 ms, total / (slots * 16)) to save round-trips.
// `selection` may be in any order; duplicates and out-of-range indices are dropped.
[[nodiscard]] std::vector<WorkUnit> make_units(const Collection& collection,
                                               std::span<const TestIndex> selection,
                                               const std::vector<double>& estimates,
                                               GroupBy group_by, int slots);

struct Shard {
  std::vector<TestIndex> tests;  // in collection order
  double estimate = 0.0;
};

// N static shards by longest-processing-time first onto the least-loaded shard.
//
// Rule: pieces (groups, see GroupBy) are placed longest first (ties: lower first
// test index) onto the least-loaded shard (ties: lower shard index). A group larger
// than the ideal load (total / N) is first cut into consecutive chunks of at most
// that size. If the plan's max/mean still exceeds k_shard_balance_target, the cut
// limit is halved (ideal/2, ideal/4, ... ideal/k_max_split_divisor) and the plan
// redone; the first plan within target is kept, else the one with the lowest max.
// So groups stay whole whenever that balances, and are cut only as much as needed.
// Each shard lists its tests in collection order; with more shards than tests some
// are empty. total_shards < 1 is treated as 1.
inline constexpr double k_shard_balance_target = 1.05;
// The most shards a plan has (CI matrices stop at a few hundred jobs); more is a usage error.
inline constexpr int k_max_shards = 10000;
inline constexpr long long k_max_split_divisor = 32;
[[nodiscard]] std::vector<Shard> plan_shards(const Collection& collection,
                                             const std::vector<double>& estimates,
                                             GroupBy group_by, int total_shards);

}  // namespace drover::common
