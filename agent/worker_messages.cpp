#include "agent/worker_messages.h"

#include <limits>
#include <nlohmann/json.hpp>
#include <utility>

namespace drover::agent {
namespace {

using common::ErrorCode;
using common::Result;
using nlohmann::json;

// Thrown inside this file only, caught in decode_worker_message(): the decoders
// read like a description of the message instead of a ladder of ifs.
struct BadField {
  std::string what;
};

const json& require(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end()) throw BadField{std::string("missing \"") + key + "\""};
  return *it;
}

std::string text(const json& object, const char* key, bool required = false) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) {
    if (required) throw BadField{std::string("missing \"") + key + "\""};
    return {};
  }
  if (!it->is_string()) throw BadField{std::string("\"") + key + "\" is not a string"};
  return it->get<std::string>();
}

std::int64_t integer(const json& object, const char* key, bool required = false) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) {
    if (required) throw BadField{std::string("missing \"") + key + "\""};
    return 0;
  }
  if (!it->is_number_integer()) throw BadField{std::string("\"") + key + "\" is not an integer"};
  return it->get<std::int64_t>();
}

// An optional boolean: absent or null leaves `out` as it was (its default).
void boolean(const json& object, const char* key, bool& out) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return;
  if (!it->is_boolean()) throw BadField{std::string("\"") + key + "\" is not a boolean"};
  out = it->get<bool>();
}

common::TestIndex to_index(const json& value, const char* key) {
  if (!value.is_number_integer()) throw BadField{std::string("\"") + key + "\" is not an integer"};
  const auto number = value.get<std::int64_t>();
  if (number < 0 || number > std::numeric_limits<common::TestIndex>::max()) {
    throw BadField{std::string("\"") + key + "\" is out of range"};
  }
  return static_cast<common::TestIndex>(number);
}

common::TestIndex index_of(const json& object) { return to_index(require(object, "index"), "index"); }

std::vector<common::TestIndex> indices_of(const json& object) {
  const json& list = require(object, "indices");
  if (!list.is_array()) throw BadField{"\"indices\" is not a list"};
  std::vector<common::TestIndex> out;
  out.reserve(list.size());
  for (const json& value : list) out.push_back(to_index(value, "indices"));
  return out;
}

const json& list_or_empty(const json& object, const char* key) {
  static const json k_empty = json::array();
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return k_empty;
  if (!it->is_array()) throw BadField{std::string("\"") + key + "\" is not a list"};
  return *it;
}

const json& object_entry(const json& value, const char* list) {
  if (!value.is_object()) throw BadField{std::string("an entry of \"") + list + "\" is not an object"};
  return value;
}

// A list of [string, string] pairs: sections ([title, text]), properties ([name, value]).
std::vector<std::pair<std::string, std::string>> string_pairs(const json& object, const char* key) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const json& pair : list_or_empty(object, key)) {
    if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string() || !pair[1].is_string()) {
      throw BadField{std::string("an entry of \"") + key + "\" is not a pair of strings"};
    }
    out.emplace_back(pair[0].get<std::string>(), pair[1].get<std::string>());
  }
  return out;
}

common::JunitIni decode_junit_ini(const json& object) {
  common::JunitIni ini;
  auto it = object.find("junit");
  if (it == object.end() || it->is_null()) return ini;  // an older worker: pytest's defaults
  if (!it->is_object()) throw BadField{"\"junit\" is not an object"};
  const json& junit = *it;
  const auto word = [&](const char* key, std::string& out) {
    if (junit.contains(key)) out = text(junit, key);  // missing: pytest's default stays
  };
  word("suite_name", ini.suite_name);
  word("family", ini.family);
  word("logging", ini.logging);
  word("duration_report", ini.duration_report);
  if (auto flag = junit.find("log_passing_tests"); flag != junit.end()) {
    if (!flag->is_boolean()) throw BadField{"\"log_passing_tests\" is not a boolean"};
    ini.log_passing_tests = flag->get<bool>();
  }
  ini.error = text(junit, "error");
  return ini;
}

HelloMessage decode_hello(const json& object) {
  HelloMessage hello;
  hello.protocol = static_cast<int>(integer(object, "protocol", true));
  hello.pid = integer(object, "pid");
  hello.python = text(object, "python");
  hello.pytest = text(object, "pytest");
  for (const json& feature : list_or_empty(object, "features")) {
    if (feature.is_string()) hello.features.push_back(feature.get<std::string>());
  }
  return hello;
}

CollectedMessage decode_collected(const json& object) {
  CollectedMessage out;
  common::Collection& collection = out.collection;
  collection.rootdir = text(object, "rootdir");
  collection.hash = text(object, "hash", true);
  const std::int64_t deselected = integer(object, "deselected");
  if (deselected < 0) throw BadField{"\"deselected\" is negative"};
  collection.deselected = static_cast<std::size_t>(deselected);
  const json& items = require(object, "items");
  if (!items.is_array()) throw BadField{"\"items\" is not a list"};
  collection.items.reserve(items.size());
  for (const json& value : items) {
    const json& entry = object_entry(value, "items");
    common::TestItem item;
    item.nodeid = text(entry, "nodeid", true);
    item.file = text(entry, "file");
    item.cls = text(entry, "cls");
    item.line = static_cast<int>(integer(entry, "line"));
    for (const json& marker : list_or_empty(entry, "markers")) {
      if (!marker.is_string()) throw BadField{"a marker is not a string"};
      item.markers.push_back(marker.get<std::string>());
    }
    collection.items.push_back(std::move(item));
  }
  for (const json& value : list_or_empty(object, "errors")) {
    const json& entry = object_entry(value, "errors");
    collection.errors.push_back({text(entry, "nodeid", true), text(entry, "longrepr"), text(entry, "message")});
  }
  for (const json& value : list_or_empty(object, "skips")) {
    const json& entry = object_entry(value, "skips");
    collection.skips.push_back({text(entry, "nodeid", true), text(entry, "file"),
                                static_cast<int>(integer(entry, "line")), text(entry, "reason")});
  }
  if (object.contains("deselected")) collection.deselected = static_cast<std::size_t>(integer(object, "deselected"));
  collection.junit = decode_junit_ini(object);
  boolean(object, "show_warnings", collection.show_warnings);
  boolean(object, "collectonly", collection.collect_only);
  boolean(object, "continue_on_collection_errors", collection.continue_on_collection_errors);
  boolean(object, "coverage", collection.coverage);
  if (auto it = object.find("reportchars"); it != object.end() && !it->is_null()) {
    if (!it->is_string()) throw BadField{"\"reportchars\" is not a string"};
    collection.reportchars = it->get<std::string>();
  }
  collection.junitxml = text(object, "junitxml");
  collection.tbstyle = text(object, "tbstyle");
  if (auto it = object.find("header"); it != object.end() && !it->is_null()) {
    if (!it->is_array()) throw BadField{"\"header\" is not a list"};
    for (const json& line : *it) {
      if (!line.is_string()) throw BadField{"\"header\" holds a non-string"};
      collection.header.push_back(line.get<std::string>());
    }
  }
  const std::int64_t verbose = integer(object, "verbose");
  if (verbose < -100 || verbose > 100) throw BadField{"\"verbose\" is out of range"};
  collection.verbose = static_cast<int>(verbose);
  const std::int64_t maxfail = integer(object, "maxfail");
  if (maxfail < 0 || maxfail > std::numeric_limits<int>::max()) throw BadField{"\"maxfail\" is out of range"};
  collection.maxfail = static_cast<int>(maxfail);
  return out;
}

ReportMessage decode_report(const json& object) {
  ReportMessage out;
  out.index = index_of(object);
  common::PhaseReport& report = out.report;
  const std::string when = text(object, "when", true);
  if (!common::parse_phase(when, report.when)) throw BadField{"unknown phase \"" + when + "\""};
  report.outcome = text(object, "outcome", true);
  const std::string status = text(object, "status");
  if (!common::parse_status(status, report.status)) throw BadField{"unknown status \"" + status + "\""};
  auto duration = object.find("duration");
  if (duration != object.end() && !duration->is_null()) {
    if (!duration->is_number()) throw BadField{"\"duration\" is not a number"};
    report.duration = duration->get<double>();
  }
  report.longrepr = text(object, "longrepr");
  report.message = text(object, "message");
  report.crash = text(object, "crash");
  report.skip_where = text(object, "skip_where");
  report.sections = string_pairs(object, "sections");
  report.properties = string_pairs(object, "properties");
  report.category = text(object, "category");
  report.letter = text(object, "letter");
  report.word = text(object, "word");
  report.crash_line = text(object, "crash_line");
  report.head_line = text(object, "head_line");
  if (report.status == common::Status::other && report.category.empty()) {
    throw BadField{"status \"other\" without a \"category\""};
  }
  return out;
}

ExitMessage decode_exit(const json& object) {
  ExitMessage out;
  const std::int64_t index = integer(object, "index");
  if (index >= 0) out.index = to_index(object.at("index"), "index");
  const std::int64_t returncode = integer(object, "returncode", true);
  if (returncode < std::numeric_limits<int>::min() || returncode > std::numeric_limits<int>::max()) {
    throw BadField{"\"returncode\" is out of range"};
  }
  out.returncode = static_cast<int>(returncode);
  out.message = text(object, "message");
  out.detail = text(object, "detail");
  return out;
}

WorkerMessage decode_object(const json& object) {
  const std::string type = text(object, "type", true);
  if (type == "hello") return decode_hello(object);
  if (type == "fatal") return FatalMessage{text(object, "message")};
  if (type == "collected") return decode_collected(object);
  if (type == "start") return StartMessage{index_of(object)};
  if (type == "report") return decode_report(object);
  if (type == "finished") return FinishedMessage{index_of(object)};
  if (type == "bye") return ByeMessage{static_cast<int>(integer(object, "exitstatus"))};
  if (type == "cancelled") return CancelledMessage{indices_of(object)};
  if (type == "warning") {
    return WarningMessage{text(object, "when"), text(object, "nodeid"),
                          {text(object, "location"), text(object, "message", true), 1}};
  }
  if (type == "exit") return decode_exit(object);
  if (type == "nosession") return NoSessionMessage{static_cast<int>(integer(object, "exitstatus"))};
  return UnknownMessage{type};
}

std::string shorten(std::string_view line) {
  constexpr std::size_t k_max = 80;
  if (line.size() <= k_max) return std::string(line);
  return std::string(line.substr(0, k_max)) + "...";
}

std::string with_indices(const char* type, std::span<const common::TestIndex> indices) {
  json message = {{"type", type}, {"indices", json::array()}};
  for (common::TestIndex index : indices) message["indices"].push_back(index);
  return message.dump() + "\n";
}

}  // namespace

Result<WorkerMessage> decode_worker_message(std::string_view line) {
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  json object = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (object.is_discarded() || !object.is_object()) {
    return common::fail(ErrorCode::protocol, "worker sent a line that is not a JSON object: " + shorten(line));
  }
  try {
    return decode_object(object);
  } catch (const BadField& bad) {
    return common::fail(ErrorCode::protocol, "worker sent a bad message (" + bad.what + "): " + shorten(line));
  } catch (const json::exception& error) {
    return common::fail(ErrorCode::protocol, std::string("worker sent a bad message (") + error.what() +
                                                 "): " + shorten(line));
  }
}

std::string encode_run(std::span<const common::TestIndex> indices) { return with_indices("run", indices); }

std::string encode_cancel(std::span<const common::TestIndex> indices) {
  return with_indices("cancel", indices);
}

std::string encode_stop() { return json{{"type", "stop"}}.dump() + "\n"; }

std::string encode_shutdown() { return json{{"type", "shutdown"}}.dump() + "\n"; }

}  // namespace drover::agent
