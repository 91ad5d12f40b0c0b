#include "cli/reporter.h"

#include <cmath>
#include <cstdio>

namespace drover::cli {
namespace {

using common::Phase;
using common::PhaseReport;
using common::Status;
using common::TestResult;

char letter(Status status) {
  switch (status) {
    case Status::passed: return '.';
    case Status::failed: return 'F';
    case Status::skipped: return 's';
    case Status::xfailed: return 'x';
    case Status::xpassed: return 'X';
    case Status::error: return 'E';
    case Status::none: break;
  }
  return 0;
}

const char* verbose_word(Status status) {
  switch (status) {
    case Status::passed: return "PASSED";
    case Status::failed: return "FAILED";
    case Status::skipped: return "SKIPPED";
    case Status::xfailed: return "XFAIL";
    case Status::xpassed: return "XPASS";
    case Status::error: return "ERROR";
    case Status::none: break;
  }
  return "";
}

// pytest's pluralize(): of the closing line's words only "error" and "warning" take an s.
std::string plural(std::int64_t count, const char* word) {
  std::string text = std::to_string(count) + " " + word;
  const std::string_view noun = word;
  if (count != 1 && (noun == "error" || noun == "warning")) text += "s";
  return text;
}

// pytest counts and shows a report unless it is a quiet phase: "" status, or a
// passed setup/teardown (only the call phase of a passing test counts as passed).
bool counted(const PhaseReport& report) {
  return report.status != Status::none && !(report.status == Status::passed && report.when != Phase::call);
}

bool is_error_report(const PhaseReport& report) {
  return report.status == Status::error;
}

}  // namespace

void Counts::add(const TestResult& result) {
  for (const PhaseReport& report : result.phases) {
    if (!counted(report)) continue;
    switch (report.status) {
      case Status::passed: ++passed; break;
      case Status::failed: ++failed; break;
      case Status::skipped: ++skipped; break;
      case Status::xfailed: ++xfailed; break;
      case Status::xpassed: ++xpassed; break;
      case Status::error: ++errors; break;
      case Status::none: break;
    }
  }
}

std::string collect_only_summary(std::size_t selected, std::size_t deselected, std::size_t errors, double elapsed) {
  const std::size_t found = selected + deselected;
  std::string text;
  if (found == 0) {
    text = "no tests collected";
  } else if (deselected == 0) {
    text = std::to_string(found) + (found == 1 ? " test" : " tests") + " collected";
  } else if (selected == 0) {
    text = "no tests collected (" + std::to_string(deselected) + " deselected)";
  } else {
    text = std::to_string(selected) + "/" + std::to_string(found) + " tests collected (" + std::to_string(deselected) +
           " deselected)";
  }
  if (errors > 0) text += ", " + plural(static_cast<std::int64_t>(errors), "error");
  return text + " in " + format_elapsed(elapsed);
}

std::string format_elapsed(double seconds) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.2fs", seconds);
  std::string text = buffer;
  if (seconds >= 60) {
    const long total = std::lround(std::floor(seconds));
    std::snprintf(buffer, sizeof buffer, " (%ld:%02ld:%02ld)", total / 3600, (total / 60) % 60, total % 60);
    text += buffer;
  }
  return text;
}

std::string summary_text(const Counts& counts, double elapsed) {
  std::string text = plural(counts.failed, "failed") + ", " + plural(counts.passed, "passed");
  // pytest's KNOWN_TYPES order.
  const std::pair<std::int64_t, const char*> rest[] = {
      {counts.skipped, "skipped"}, {counts.deselected, "deselected"}, {counts.xfailed, "xfailed"},
      {counts.xpassed, "xpassed"}, {counts.warnings, "warning"},       {counts.errors, "error"}};
  for (const auto& [count, word] : rest) {
    if (count > 0) text += ", " + plural(count, word);
  }
  return text + " in " + format_elapsed(elapsed);
}

std::string head_line(const std::string& nodeid) {
  const auto separator = nodeid.find("::");
  if (separator == std::string::npos) return nodeid;
  std::string domain = nodeid.substr(separator + 2);
  // Only the part before a parametrize id names classes and functions.
  const auto bracket = domain.find('[');
  for (std::size_t pos = domain.find("::"); pos != std::string::npos && pos < bracket;
       pos = domain.find("::", pos + 1)) {
    domain.replace(pos, 2, ".");
  }
  return domain;
}

Reporter::Reporter(std::FILE* out, int verbosity, bool tty, int width)
    : m_out(out), m_verbosity(verbosity), m_tty(tty), m_width(width) {}

std::string Reporter::ruled(const std::string& text, char fill) const {
  if (text.empty()) return std::string(m_width, fill);
  const int room = m_width - static_cast<int>(text.size()) - 2;
  if (room < 2) return text;
  const int left = room / 2;
  return std::string(left, fill) + " " + text + " " + std::string(room - left, fill);
}

void Reporter::header(const std::string& text) { line(ruled(text, '=')); }

void Reporter::line(const std::string& text) {
  clear_live_line();
  std::fprintf(m_out, "%s\n", text.c_str());
  std::fflush(m_out);
}

void Reporter::collected(const common::Collection& collection, std::size_t selected, std::size_t workers) {
  m_total = selected;  // the live line's total, with -q too
  if (m_verbosity < 0) return;
  const std::size_t found = collection.items.size() + collection.deselected;  // before -k/-m, as pytest counts
  std::string text = "collected " + std::to_string(found) + " item" + (found == 1 ? "" : "s");
  if (!collection.errors.empty()) text += " / " + plural(static_cast<int>(collection.errors.size()), "error");
  if (collection.deselected > 0) text += " / " + std::to_string(collection.deselected) + " deselected";
  if (!collection.skips.empty()) text += " / " + std::to_string(collection.skips.size()) + " skipped";
  if (collection.deselected > 0) text += " / " + std::to_string(collection.items.size()) + " selected";
  if (selected != collection.items.size()) text += " / " + std::to_string(selected) + " in this shard";
  text += workers > 0 ? ", " + std::to_string(workers) + (workers == 1 ? " worker" : " workers") : "";
  line(text);
  if (m_verbosity >= 0 && !m_tty) line("");
}

void Reporter::clear_live_line() {
  if (m_tty && m_live_shown) {
    std::fprintf(m_out, "\r\033[K");
    m_live_shown = false;
  }
  if (!m_tty && m_column > 0) {
    std::fprintf(m_out, "\n");
    m_column = 0;
  }
}

void Reporter::progress_dot(const TestResult& result) {
  for (const PhaseReport& report : result.phases) {
    if (!counted(report)) continue;
    std::fputc(letter(report.status), m_out);
    if (++m_column >= static_cast<std::size_t>(m_width - 8)) {
      std::fprintf(m_out, " [%3zu%%]\n", m_total ? m_done * 100 / m_total : 100);
      m_column = 0;
    }
  }
}

void Reporter::test_finished(const common::TestItem& item, const TestResult& result) {
  ++m_done;
  m_live.add(result);
  if (m_verbosity > 0) {
    for (const PhaseReport& report : result.phases) {
      if (!counted(report)) continue;
      std::string text = item.nodeid + " " + verbose_word(report.status);
      if ((report.status == Status::skipped || report.status == Status::xfailed) && !report.message.empty()) {
        text += " (" + report.message + ")";
      }
      line(text + " [" + result.worker + "]");
    }
    return;
  }
  if (m_tty) {
    std::string text = "[" + std::to_string(m_done) + "/" + std::to_string(m_total) + "] " +
                       summary_text(m_live, 0.0);
    text.resize(text.rfind(" in "));
    std::fprintf(m_out, "\r\033[K%s", text.substr(0, static_cast<std::size_t>(m_width - 1)).c_str());
    m_live_shown = true;
  } else {
    progress_dot(result);
  }
  std::fflush(m_out);
}

void Reporter::collection_errors(const common::Collection& collection) {
  if (collection.errors.empty()) return;
  clear_live_line();
  header("ERRORS");
  for (const auto& error : collection.errors) {
    std::fprintf(m_out, "%s\n%s\n", ruled("ERROR collecting " + error.nodeid, '_').c_str(), error.longrepr.c_str());
  }
}

void Reporter::stop_line(const std::string& stop_message) {
  if (stop_message.empty()) return;
  const auto end = stop_message.find('\n');
  std::fprintf(m_out, "%s\n", ruled(stop_message.substr(0, end), '!').c_str());
  if (end != std::string::npos) std::fprintf(m_out, "%s\n", stop_message.substr(end + 1).c_str());
}

void Reporter::collection_error_summary(const common::Collection& collection, std::vector<std::string>& summary) {
  for (const auto& error : collection.errors) summary.push_back("ERROR " + error.nodeid);
}

void Reporter::warnings_section(const common::Collection& collection, const WarningsSummary& warnings) {
  if (!collection.show_warnings || warnings.total() == 0) return;
  header("warnings summary");
  for (const std::string& text : warnings.lines()) std::fprintf(m_out, "%s\n", text.c_str());
}

void Reporter::collect_only(const common::Collection& collection, const std::vector<common::TestIndex>& selection,
                            double elapsed, const std::string& stop_message, const WarningsSummary& warnings) {
  clear_live_line();
  for (common::TestIndex index : selection) std::fprintf(m_out, "%s\n", collection.items[index].nodeid.c_str());
  if (!selection.empty()) std::fputc('\n', m_out);
  collection_errors(collection);
  warnings_section(collection, warnings);
  std::vector<std::string> summary;
  collection_error_summary(collection, summary);
  if (!summary.empty()) {
    header("short test summary info");
    for (const auto& text : summary) std::fprintf(m_out, "%s\n", text.c_str());
  }
  stop_line(stop_message);
  header(collect_only_summary(selection.size(), collection.deselected, collection.errors.size(), elapsed));
  std::fflush(m_out);
}

Counts Reporter::finish(const common::Collection& collection,
                        const std::vector<std::optional<TestResult>>& results, double elapsed,
                        const std::string& stop_message, const WarningsSummary& warnings) {
  clear_live_line();
  if (m_verbosity >= 0 && (m_tty || m_done > 0)) std::fprintf(m_out, "\n");
  // Results per file, in collection order.
  if (m_verbosity == 0) {
    std::string file;
    std::string marks;
    auto flush = [&] {
      if (!file.empty() && !marks.empty()) std::fprintf(m_out, "%s %s\n", file.c_str(), marks.c_str());
      marks.clear();
    };
    for (std::size_t i = 0; i < results.size(); ++i) {
      if (!results[i]) continue;
      const auto& item = collection.items[i];
      if (item.file != file) {
        flush();
        file = item.file;
      }
      for (const PhaseReport& report : results[i]->phases) {
        if (counted(report)) marks += letter(report.status);
      }
    }
    flush();
  }
  Counts counts;
  for (const auto& result : results) {
    if (result) counts.add(*result);
  }
  counts.skipped += static_cast<int>(collection.skips.size());
  counts.deselected = static_cast<int>(collection.deselected);
  counts.errors += static_cast<int>(collection.errors.size());
  counts.warnings = warnings.total();

  bool errors_shown = !collection.errors.empty();
  auto section = [&](const char* title, auto wanted, auto describe) {
    bool any = std::string_view(title) == "ERRORS" && errors_shown;
    for (std::size_t i = 0; i < results.size(); ++i) {
      if (!results[i]) continue;
      for (const PhaseReport& report : results[i]->phases) {
        if (!wanted(report)) continue;
        if (!any) header(title);
        any = true;
        std::fprintf(m_out, "%s\n", ruled(describe(collection.items[i], report), '_').c_str());
        if (!report.longrepr.empty()) std::fprintf(m_out, "%s\n", report.longrepr.c_str());
        for (const auto& [name, text] : report.sections) {
          if (text.empty()) continue;
          std::fprintf(m_out, "%s\n%s", ruled(name, '-').c_str(), text.c_str());
          if (text.back() != '\n') std::fputc('\n', m_out);
        }
      }
    }
  };
  collection_errors(collection);
  section("ERRORS", is_error_report, [](const common::TestItem& item, const PhaseReport& report) {
    return std::string("ERROR at ") + std::string(common::to_string(report.when)) + " of " + head_line(item.nodeid);
  });
  section("FAILURES",
          [](const PhaseReport& report) { return report.status == Status::failed; },
          [](const common::TestItem& item, const PhaseReport&) { return head_line(item.nodeid); });
  warnings_section(collection, warnings);
  std::fputs(m_plugin_summary.c_str(), m_out);

  std::vector<std::string> summary;
  auto add_summary = [&](const char* word, const std::string& nodeid, const std::string& message) {
    summary.push_back(std::string(word) + " " + nodeid + (message.empty() ? "" : " - " + message));
  };
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (!results[i]) continue;
    for (const PhaseReport& report : results[i]->phases) {
      if (report.status == Status::failed) add_summary("FAILED", collection.items[i].nodeid, report.message);
    }
  }
  collection_error_summary(collection, summary);
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (!results[i]) continue;
    for (const PhaseReport& report : results[i]->phases) {
      if (report.status == Status::error) add_summary("ERROR", collection.items[i].nodeid, report.message);
    }
  }
  if (!summary.empty()) {
    header("short test summary info");
    for (const auto& text : summary) std::fprintf(m_out, "%s\n", text.c_str());
  }
  stop_line(stop_message);
  header(summary_text(counts, elapsed));
  std::fflush(m_out);
  return counts;
}

}  // namespace drover::cli
