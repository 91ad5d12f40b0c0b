// Reading JUnit XML reports back: drover's own, pytest's (xunit1/xunit2), and
// other xunit producers, with or without the <testsuites> wrapper.
//
// The reader keeps the parsed document alive and points into it, so a merge can
// copy testcases verbatim (captured output, properties, anything unknown).
// Failure: a one-line Error naming the file (unreadable, malformed XML with its
// byte offset, a root element that is not JUnit, a bad number in a total).
// Thread-safety: a JunitFile is a value; read-only use from many threads is safe.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <pugixml.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.h"
#include "common/junit_text.h"

namespace drover::common {

// What a testcase says, decided by its first result element.
enum class CaseKind { passed, failed, error, skipped, xfailed };

struct JunitCase {
  TestAddress address;  // classname and name attributes
  double time = 0.0;
  CaseKind kind = CaseKind::passed;
  std::string message;  // of the first result element
  // <error message="collection failure"> or <skipped message="collection skipped">:
  // a collector, not a test.
  bool collection_report = false;
  // pytest's second testcase for a teardown error after a failed call: the same
  // test as the testcase before it.
  bool continuation = false;
  int failures = 0;  // result elements in this testcase
  int errors = 0;
  int skipped = 0;
  pugi::xml_node node;
};

struct JunitSuite {
  std::string name;
  // The totals as the file states them; absent when the attribute is missing.
  std::optional<int> tests, failures, errors, skipped;
  std::optional<double> time;
  std::string timestamp;
  std::string hostname;
  std::vector<std::pair<std::string, std::string>> properties;  // non-drover ones
  std::vector<JunitCase> cases;
};

// drover's testsuite properties (names in junit.h), when present.
struct DroverProperties {
  std::optional<std::string> version;
  std::optional<std::string> collection_hash;
  std::optional<int> shard_index;
  std::optional<int> total_shards;
  std::optional<int> collected_count;
  std::optional<int> assigned_count;
  std::vector<std::string> assigned;        // node ids, in collection order
  std::optional<std::vector<int>> assigned_indices;  // collection indices, same order
  std::optional<int> merged_reports;                 // set on `drover merge` output
  [[nodiscard]] bool has_assignment() const { return assigned_count.has_value(); }
};

struct JunitFile {
  std::string path;  // as given, for messages
  std::shared_ptr<pugi::xml_document> document;
  std::vector<JunitSuite> suites;
  DroverProperties drover;
};

[[nodiscard]] Result<JunitFile> read_junit(const std::filesystem::path& path);
// Same from memory; `name` stands in for the path in messages.
[[nodiscard]] Result<JunitFile> parse_junit(std::string_view xml, const std::string& name);

// "0-3,7,9-10" <-> {0,1,2,3,7,9,10}: how drover.assigned_indices is written.
[[nodiscard]] std::string format_index_ranges(const std::vector<int>& indices);
[[nodiscard]] std::optional<std::vector<int>> parse_index_ranges(std::string_view text);

// Saves `document` to a temporary file beside `path` and renames it into place
// (creating missing parent directories, as pytest does).
[[nodiscard]] Result<void> save_xml_atomically(const std::filesystem::path& path, const pugi::xml_document& document);

// Starts a report as pytest writes one: the XML declaration, <testsuites> and one
// <testsuite> whose attributes (name, errors, failures, skipped, tests, time,
// timestamp, hostname) exist in pytest's order with empty values. Returns the suite.
pugi::xml_node start_junit_document(pugi::xml_document& document);

}  // namespace drover::common
