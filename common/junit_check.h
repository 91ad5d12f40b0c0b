// The completeness proof behind `drover merge`: do these reports hold every
// assigned test exactly once, from every shard of one collection?
//
// Reads only drover's properties (junit.h) and the testcases' addresses; plain
// reports without drover properties are not checked (nothing to check against)
// unless mixed into a sharded set. Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/junit_read.h"
#include "common/junit_text.h"

namespace drover::common {

// The address pytest writes for `nodeid`: mangled, then escaped as written.
[[nodiscard]] TestAddress escaped_address(std::string_view nodeid);

// One line per problem, e.g. "missing shard 2 (shards 0-3)",
// "shard-1.xml: not reported: tests/test_a.py::test_x"; empty when complete.
// Long lists are cut ("... and 120 more").
[[nodiscard]] std::vector<std::string> check_completeness(const std::vector<JunitFile>& files);

}  // namespace drover::common
