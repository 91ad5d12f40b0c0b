#include "cli/warnings_summary.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace drover::cli {
namespace {

using common::Warning;

const std::string k_docs = "-- Docs: https://docs.pytest.org/en/stable/how-to/capture-warnings.html";
const std::string k_user = "t.py:5: UserWarning: careful\n  warnings.warn(\"careful\")\n";

common::TestResult warned(common::TestIndex index, std::vector<Warning> warnings) {
  common::TestResult result;
  result.index = index;
  result.warnings = std::move(warnings);
  return result;
}

TEST(WarningsSummary, NothingAddedNoSection) {
  WarningsSummary summary;
  EXPECT_EQ(summary.total(), 0);
  EXPECT_TRUE(summary.lines().empty());
}

// pytest's collapsed_location_report: places, then the message indented by two spaces
// and right-stripped, then an empty line; the Docs line closes the section.
TEST(WarningsSummary, GroupsByMessageInRecordingOrder) {
  WarningsSummary summary;
  // Completion order differs from collection order; the section follows collection order.
  auto third = warned(2, {{"t.py::test_c", k_user, 1}});
  auto first = warned(0, {{"t.py::test_a", k_user, 1}, {"t.py::test_a", "t.py:9: DeprecationWarning: old\n  old()\n", 1}});
  summary.take(third);
  summary.take(first);
  summary.add_session({{"conftest.py:3", "conftest.py:3: UserWarning: at import\n  warnings.warn(\"at import\")\n", 1}});
  EXPECT_TRUE(first.warnings.empty());  // moved into the summary
  EXPECT_EQ(summary.total(), 4);
  const std::vector<std::string> expected = {
      "conftest.py:3",
      "  conftest.py:3: UserWarning: at import",
      "    warnings.warn(\"at import\")",
      "",
      "t.py::test_a",
      "t.py::test_c",
      "  t.py:5: UserWarning: careful",
      "    warnings.warn(\"careful\")",
      "",
      "t.py::test_a",
      "  t.py:9: DeprecationWarning: old",
      "    old()",
      "",
      k_docs,
  };
  EXPECT_EQ(summary.lines(), expected);
}

// Ten places and more: pytest counts them per file, files in first-seen order.
TEST(WarningsSummary, TenPlacesOrMoreAreCountedPerFile) {
  WarningsSummary summary;
  for (common::TestIndex i = 0; i < 9; ++i) summary.add(i + 1, {"b.py::test_" + std::to_string(i), k_user, 1});
  summary.add(0, {"a.py::test_x", k_user, 1});
  summary.add(20, {"a.py::test_y", k_user, 1});  // repeated identical warnings count each
  EXPECT_EQ(summary.total(), 11);
  const std::vector<std::string> expected = {
      "a.py: 2 warnings", "b.py: 9 warnings", "  t.py:5: UserWarning: careful", "    warnings.warn(\"careful\")", "",
      k_docs,
  };
  EXPECT_EQ(summary.lines(), expected);

  WarningsSummary repeated;
  repeated.add(1, {"a.py::test_loop", k_user, 3});
  EXPECT_EQ(repeated.lines()[0], "a.py::test_loop");
  EXPECT_EQ(repeated.lines()[2], "a.py::test_loop");
  repeated.add(2, {"a.py::test_more", k_user, 7});
  EXPECT_EQ(repeated.lines()[0], "a.py: 10 warnings");
  EXPECT_EQ(repeated.total(), 10);
}

TEST(WarningsSummary, MessageWithoutPlaceIsNotIndented) {
  WarningsSummary summary;
  summary.add(0, {"", "UserWarning: nowhere\n\n", 1});
  const std::vector<std::string> expected = {"UserWarning: nowhere", "", k_docs};
  EXPECT_EQ(summary.lines(), expected);
}

// A warning with a new text in each of 100k tests: the texts past the cap are only
// counted, and the section says so.
TEST(WarningsSummary, KeepsAtMostMaxMessages) {
  WarningsSummary summary;
  const std::size_t tests = 100000;
  for (std::size_t i = 0; i < tests; ++i) {
    summary.add(i + 1, {"t.py::test_" + std::to_string(i), "t.py:1: UserWarning: value " + std::to_string(i) + "\n", 1});
  }
  EXPECT_EQ(summary.total(), static_cast<std::int64_t>(tests));
  const auto lines = summary.lines();
  const std::string cut = "[drover: " + std::to_string(tests - WarningsSummary::k_max_messages) +
                          " more warnings with messages past the first 1000 different ones, not shown]";
  ASSERT_GE(lines.size(), 3u);
  EXPECT_EQ(lines[lines.size() - 3], cut);
  EXPECT_EQ(lines.back(), k_docs);
  EXPECT_EQ(lines.size(), WarningsSummary::k_max_messages * 3 + 3);
}

TEST(WarningsSummary, KeepsAtMostMaxFilesPerMessage) {
  WarningsSummary summary;
  const std::size_t files = WarningsSummary::k_max_files + 5;
  for (std::size_t i = 0; i < files; ++i) summary.add(i + 1, {"t" + std::to_string(i) + ".py::test", k_user, 2});
  const auto lines = summary.lines();
  EXPECT_EQ(lines[0], "t0.py: 2 warnings");
  EXPECT_EQ(lines[WarningsSummary::k_max_files], "[drover: 10 more warnings in files past the first 1000, not listed]");
  EXPECT_EQ(summary.total(), static_cast<std::int64_t>(files * 2));
}

}  // namespace
}  // namespace drover::cli
