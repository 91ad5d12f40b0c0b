#include "common/junit_read.h"

#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>

#include "common/junit.h"
#include "common/planner.h"

namespace drover::common {
namespace {

std::optional<int> to_int(std::string_view text) {
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<double> to_seconds(std::string_view text) {
  // JUnit times are plain decimals; "1,234.5", "1.5s", "inf", "nan" or "-1" is reported
  // as a bad attribute (and never reaches a durations file).
  double value = 0.0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value) || value < 0) return std::nullopt;
  return value;
}

// Bounds of drover's count properties: a report claiming more is corrupt, not a plan
// to allocate for.
constexpr int k_max_collected_count = 10'000'000;

class Reader {
 public:
  explicit Reader(const std::string& name) : m_name(name) {}

  Result<void> read_suite(pugi::xml_node node, JunitFile& file) {
    JunitSuite suite;
    suite.name = node.attribute("name").value();
    auto count = [&](const char* attr, std::optional<int>& out) -> Result<void> {
      const pugi::xml_attribute attribute = node.attribute(attr);
      if (!attribute) return {};
      out = to_int(attribute.value());
      if (!out) return bad_number(attr, attribute.value(), "testsuite");
      return {};
    };
    for (auto [attr, out] : {std::pair{"tests", &suite.tests}, std::pair{"failures", &suite.failures},
                             std::pair{"errors", &suite.errors}, std::pair{"skipped", &suite.skipped}}) {
      if (auto ok = count(attr, *out); !ok) return ok;
    }
    if (const pugi::xml_attribute time = node.attribute("time")) {
      suite.time = to_seconds(time.value());
      if (!suite.time) return bad_number("time", time.value(), "testsuite");
    }
    suite.timestamp = node.attribute("timestamp").value();
    suite.hostname = node.attribute("hostname").value();
    for (pugi::xml_node property : node.child("properties").children("property")) {
      if (auto ok = read_property(property, suite, file.drover); !ok) return ok;
    }
    for (pugi::xml_node testcase : node.children("testcase")) {
      auto read = read_case(testcase, suite.cases.empty() ? nullptr : &suite.cases.back());
      if (!read) return std::unexpected(read.error());
      suite.cases.push_back(std::move(*read));
    }
    file.suites.push_back(std::move(suite));
    // Nested suites (some xunit producers) are read as further suites.
    for (pugi::xml_node nested : node.children("testsuite")) {
      if (auto ok = read_suite(nested, file); !ok) return ok;
    }
    return {};
  }

 private:
  std::unexpected<Error> bad_number(std::string_view attr, std::string_view value, std::string_view element) const {
    return fail(ErrorCode::parse, m_name + ": bad " + std::string(attr) + " attribute '" + std::string(value) +
                                      "' in <" + std::string(element) + ">");
  }

  Result<void> read_property(pugi::xml_node property, JunitSuite& suite, DroverProperties& drover) {
    const std::string name = property.attribute("name").value();
    const std::string value = property.attribute("value").value();
    auto number = [&](std::optional<int>& out, int most = k_max_collected_count) -> Result<void> {
      out = to_int(value);
      if (!out || *out < 0 || *out > most) return fail(ErrorCode::parse, m_name + ": bad " + name + " property '" + value + "'");
      return {};
    };
    if (name == k_junit_prop_version) {
      drover.version = value;
    } else if (name == k_junit_prop_collection_hash) {
      drover.collection_hash = value;
    } else if (name == k_junit_prop_shard_index) {
      return number(drover.shard_index, k_max_shards - 1);
    } else if (name == k_junit_prop_total_shards) {
      return number(drover.total_shards, k_max_shards);
    } else if (name == k_junit_prop_collected_count) {
      return number(drover.collected_count);
    } else if (name == k_junit_prop_assigned_count) {
      return number(drover.assigned_count);
    } else if (name == k_junit_prop_assigned) {
      drover.assigned.push_back(value);
    } else if (name == k_junit_prop_assigned_indices) {
      drover.assigned_indices = parse_index_ranges(value);
      if (!drover.assigned_indices) return fail(ErrorCode::parse, m_name + ": bad " + name + " property '" + value + "'");
    } else if (name == k_junit_prop_merged_reports) {
      return number(drover.merged_reports);
    } else {
      suite.properties.emplace_back(name, value);
    }
    return {};
  }

  Result<JunitCase> read_case(pugi::xml_node node, const JunitCase* previous) const {
    JunitCase testcase;
    testcase.node = node;
    testcase.address.classname = node.attribute("classname").value();
    testcase.address.name = node.attribute("name").value();
    if (const pugi::xml_attribute time = node.attribute("time")) {
      const auto seconds = to_seconds(time.value());
      if (!seconds) return bad_number("time", time.value(), "testcase");
      testcase.time = *seconds;
    }
    bool first = true;
    for (pugi::xml_node child : node.children()) {
      const std::string_view tag = child.name();
      CaseKind kind = CaseKind::passed;
      if (tag == "failure") {
        kind = CaseKind::failed;
        ++testcase.failures;
      } else if (tag == "error") {
        kind = CaseKind::error;
        ++testcase.errors;
      } else if (tag == "skipped") {
        kind = std::string_view(child.attribute("type").value()) == "pytest.xfail" ? CaseKind::xfailed : CaseKind::skipped;
        ++testcase.skipped;
      } else {
        continue;
      }
      if (!first) continue;
      first = false;
      testcase.kind = kind;
      testcase.message = child.attribute("message").value();
      testcase.collection_report = (kind == CaseKind::error && testcase.message == "collection failure") ||
                                   (kind == CaseKind::skipped && testcase.message == "collection skipped");
    }
    testcase.continuation = previous != nullptr && previous->address == testcase.address &&
                            previous->failures > 0 && testcase.kind == CaseKind::error &&
                            testcase.failures == 0 && testcase.message.starts_with("failed on teardown with \"");
    return testcase;
  }

  std::string m_name;
};

}  // namespace

Result<JunitFile> parse_junit(std::string_view xml, const std::string& name) {
  auto document = std::make_shared<pugi::xml_document>();
  const pugi::xml_parse_result parsed = document->load_buffer(xml.data(), xml.size(), pugi::parse_default);
  if (!parsed) {
    return fail(ErrorCode::parse, name + ": malformed XML: " + parsed.description() + " at offset " +
                                      std::to_string(parsed.offset));
  }
  const pugi::xml_node root = document->document_element();
  const std::string_view root_name = root.name();
  if (root_name != "testsuites" && root_name != "testsuite") {
    const std::string shown = root ? "<" + std::string(root_name) + ">" : "none";
    return fail(ErrorCode::parse, name + ": not a JUnit XML file (root element " + shown + ")");
  }
  JunitFile file;
  file.path = name;
  file.document = document;
  Reader reader(name);
  if (root_name == "testsuite") {
    if (auto ok = reader.read_suite(root, file); !ok) return std::unexpected(ok.error());
  } else {
    for (pugi::xml_node suite : root.children("testsuite")) {
      if (auto ok = reader.read_suite(suite, file); !ok) return std::unexpected(ok.error());
    }
  }
  return file;
}

Result<JunitFile> read_junit(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return fail(ErrorCode::io, path.string() + ": is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(ErrorCode::io, path.string() + ": cannot read: " + std::strerror(errno));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return fail(ErrorCode::io, path.string() + ": cannot read: " + std::strerror(errno));
  return parse_junit(buffer.view(), path.string());
}

std::string format_index_ranges(const std::vector<int>& indices) {
  std::string out;
  for (std::size_t i = 0; i < indices.size();) {
    std::size_t j = i;
    while (j + 1 < indices.size() && indices[j + 1] == indices[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(indices[i]);
    if (j > i) out += '-' + std::to_string(indices[j]);
    i = j + 1;
  }
  return out;
}

std::optional<std::vector<int>> parse_index_ranges(std::string_view text) {
  std::vector<int> out;
  while (!text.empty()) {
    const std::size_t comma = text.find(',');
    const std::string_view part = text.substr(0, comma);
    const std::size_t dash = part.find('-');
    const auto first = to_int(part.substr(0, dash));
    const auto last = dash == std::string_view::npos ? first : to_int(part.substr(dash + 1));
    if (!first || !last || *first < 0 || *last < *first) return std::nullopt;
    // A bound against a hostile "0-2000000000" rather than a limit on real suites.
    if (out.size() + static_cast<std::size_t>(*last - *first) > 50'000'000) return std::nullopt;
    for (int i = *first; i <= *last; ++i) out.push_back(i);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
    if (text.empty()) return std::nullopt;  // trailing comma
  }
  return out;
}

pugi::xml_node start_junit_document(pugi::xml_document& document) {
  pugi::xml_node decl = document.append_child(pugi::node_declaration);
  decl.append_attribute("version") = "1.0";
  decl.append_attribute("encoding") = "utf-8";
  pugi::xml_node suite = document.append_child("testsuites").append_child("testsuite");
  for (const char* name : {"name", "errors", "failures", "skipped", "tests", "time", "timestamp", "hostname"}) {
    suite.append_attribute(name);
  }
  return suite;
}

Result<void> save_xml_atomically(const std::filesystem::path& path, const pugi::xml_document& document) {
  std::error_code ec;
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
  if (ec) return fail(ErrorCode::io, path.string() + ": cannot create directory: " + ec.message());
  std::filesystem::path temp = path;
  temp += ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) return fail(ErrorCode::io, path.string() + ": cannot write: " + std::strerror(errno));
    document.save(out, "", pugi::format_raw, pugi::encoding_utf8);
    out.flush();
    if (!out) {
      std::filesystem::remove(temp, ec);
      return fail(ErrorCode::io, path.string() + ": cannot write: " + std::strerror(errno));
    }
  }
  std::filesystem::rename(temp, path, ec);
  if (ec) {
    std::error_code ignored;
    std::filesystem::remove(temp, ignored);
    return fail(ErrorCode::io, path.string() + ": cannot write: " + ec.message());
  }
  return {};
}

}  // namespace drover::common
