#include "cli/reporter.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <tuple>

namespace drover::cli {
namespace {

using common::Phase;
using common::PhaseReport;
using common::Status;
using common::TestResult;

// The progress letter pytest_report_teststatus gave the report.
std::string letter(const PhaseReport& report) {
  if (!report.letter.empty()) return report.letter;
  switch (report.status) {
    case Status::passed: return ".";
    case Status::failed: return "F";
    case Status::skipped: return "s";
    case Status::xfailed: return "x";
    case Status::xpassed: return "X";
    case Status::error: return "E";
    case Status::none:
    case Status::other: break;
  }
  return "";
}

// The word `-v` shows for the report.
std::string verbose_word(const PhaseReport& report) {
  if (!report.word.empty()) return report.word;
  switch (report.status) {
    case Status::passed: return "PASSED";
    case Status::failed: return "FAILED";
    case Status::skipped: return "SKIPPED";
    case Status::xfailed: return "XFAIL";
    case Status::xpassed: return "XPASS";
    case Status::error: return "ERROR";
    case Status::none: break;
    case Status::other: return report.category;
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

// Characters as a terminal shows them (UTF-8 code points; pytest counts wcwidth).
std::size_t display_width(std::string_view text) {
  return static_cast<std::size_t>(
      std::count_if(text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

// The first `width` characters of `text`.
std::string head_chars(const std::string& text, std::size_t width) {
  std::size_t seen = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80 && seen++ == width) return text.substr(0, i);
  }
  return text;
}

// pytest's _format_trimmed(" - {}", message, available): the message's first line, cut
// with "..." to fit; nothing when not even " - ..." fits.
std::string trimmed_message(const std::string& message, std::size_t available) {
  const std::string first = message.substr(0, message.find('\n'));
  const std::size_t format_width = 3;  // " - "
  if (format_width + 3 > available) return "";
  if (format_width + display_width(first) <= available) return " - " + first;
  return " - " + head_chars(first, available - 3 - format_width) + "...";
}

// pytest's running_on_ci(): short summary messages are not cut there.
bool running_on_ci() { return std::getenv("CI") != nullptr || std::getenv("BUILD_NUMBER") != nullptr; }

std::string strip_skipped_prefix(const std::string& reason) {
  constexpr std::string_view prefix = "Skipped: ";
  return reason.starts_with(prefix) ? reason.substr(prefix.size()) : reason;
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
      case Status::other: {
        auto it = std::find_if(others.begin(), others.end(), [&](const auto& o) { return o.first == report.category; });
        if (it == others.end()) it = others.insert(others.end(), {report.category, 0});
        ++it->second;
        break;
      }
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
  // Then plugins' own categories ("4 rerun"), in the order they first appeared.
  for (const auto& [word, count] : counts.others) text += ", " + std::to_string(count) + " " + word;
  return text + " in " + format_elapsed(elapsed);
}

void Reporter::set_invocation_dir(const std::string& rootdir, const std::string& cwd) {
  if (std::filesystem::path(rootdir).lexically_normal() == std::filesystem::path(cwd).lexically_normal()) return;
  m_rootdir = rootdir;
  m_cwd = cwd;
}

std::string Reporter::shown(const std::string& nodeid) const {
  if (m_rootdir.empty()) return nodeid;
  const auto separator = nodeid.find("::");
  const std::string path = nodeid.substr(0, separator);
  // pytest's bestrelpath: "inner/test_i.py" below the cwd, "../other/test_x.py" beside it.
  const auto relative = (std::filesystem::path(m_rootdir) / path).lexically_normal().lexically_relative(m_cwd);
  if (relative.empty()) return nodeid;
  return relative.string() + (separator == std::string::npos ? "" : nodeid.substr(separator));
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

int terminal_width() {
  int width = 0;
  if (const char* columns = std::getenv("COLUMNS"); columns != nullptr) {
    const std::string_view text(columns);
    int value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec == std::errc() && end == text.data() + text.size() && value > 0) width = value;
  }
  winsize size{};
  if (width <= 0 && ::ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0) width = size.ws_col;
  return width < 40 ? 80 : width;
}

Reporter::Reporter(std::FILE* out, int verbosity, bool tty, int width)
    : m_out(out), m_verbosity(verbosity), m_tty(tty), m_width(width) {}

std::string Reporter::ruled(const std::string& text, char fill) const {
  if (text.empty()) return std::string(m_width, fill);
  // As pytest's sep(): at least one fill character each side, however long the text.
  const int room = m_width - static_cast<int>(display_width(text)) - 2;
  const int left = std::max(room / 2, 1);
  return std::string(left, fill) + " " + text + " " + std::string(std::max(room - left, 1), fill);
}

void Reporter::header(const std::string& text) { line(ruled(text, '=')); }

// pytest's summary_stats: framed, but a plain line with -q.
void Reporter::rerun_section(const common::Collection& collection,
                             const std::vector<std::optional<TestResult>>& results) {
  // pytest-rerunfailures' own terminal summary for -rR (or -rr): "RERUN <node id>" for
  // each rerun attempt, once per r/R in the -r characters, as the plugin prints them.
  const auto times = std::count_if(collection.reportchars.begin(), collection.reportchars.end(),
                                   [](char c) { return c == 'r' || c == 'R'; });
  std::vector<std::string> lines;
  for (long i = 0; i < times; ++i) {
    for (std::size_t test = 0; test < results.size(); ++test) {
      if (!results[test]) continue;
      for (const PhaseReport& report : results[test]->phases) {
        if (report.status == Status::other && report.category == "rerun") {
          lines.push_back("RERUN " + collection.items[test].nodeid);
        }
      }
    }
  }
  if (lines.empty()) return;
  header("rerun test summary info");
  for (const auto& text : lines) std::fprintf(m_out, "%s\n", text.c_str());
}

void Reporter::closing_line(const std::string& text) {
  if (m_verbosity < -1) return;  // -qq: pytest prints no closing line
  m_verbosity >= 0 ? header(text) : line(text);
}

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
    // As pytest ends a line of dots: its progress, right-aligned to the width.
    char percent[16];
    std::snprintf(percent, sizeof percent, " [%3zu%%]", m_total ? m_done * 100 / m_total : 100);
    const std::size_t used = m_column + std::strlen(percent);
    const std::size_t line_width = static_cast<std::size_t>(m_width - 1);
    std::fprintf(m_out, "%s%s\n", std::string(line_width > used ? line_width - used : 0, ' ').c_str(), percent);
    m_column = 0;
  }
}

void Reporter::progress_dot(const TestResult& result) {
  for (const PhaseReport& report : result.phases) {
    if (!counted(report)) continue;
    std::fputs(letter(report).c_str(), m_out);
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
      std::string text = shown(item.nodeid) + " " + verbose_word(report);
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
  if (collection.errors.empty() || collection.tbstyle == "no") return;  // pytest's --tb=no
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

std::vector<std::string> Reporter::short_summary(const common::Collection& collection,
                                                 const std::vector<std::optional<TestResult>>& results) const {
  std::vector<std::string> lines;
  const bool on_ci = running_on_ci();
  // pytest's _get_line_with_reprcrash_message: the crash message's first line (none when
  // the report has no crash location, e.g. a strict XPASS), cut to the terminal's width.
  auto simple = [&](const std::string& word, const std::string& nodeid, const std::string& message) {
    std::string line = word + " " + nodeid;
    if (message.empty()) return line;
    if (on_ci) return line + " - " + message;  // whole, as pytest does on CI
    const std::size_t used = display_width(line);
    return line + trimmed_message(message, used < static_cast<std::size_t>(m_width) ? m_width - used : 0);
  };
  auto each_phase = [&](auto wanted, auto emit) {
    for (std::size_t i = 0; i < results.size(); ++i) {
      if (!results[i]) continue;
      for (const PhaseReport& report : results[i]->phases) {
        if (wanted(report)) emit(shown(collection.items[i].nodeid), report);
      }
    }
  };
  auto with_status = [](Status status) { return [status](const PhaseReport& report) { return report.status == status; }; };
  for (const char part : collection.reportchars) {
    switch (part) {
      case 'f':
        each_phase(with_status(Status::failed), [&](const std::string& nodeid, const PhaseReport& report) {
          lines.push_back(simple(verbose_word(report), nodeid, report.crash));  // a plugin's: SUBFAIL
        });
        break;
      case 'E':
        for (const auto& error : collection.errors) lines.push_back(simple("ERROR", shown(error.nodeid), error.message));
        each_phase(with_status(Status::error), [&](const std::string& nodeid, const PhaseReport& report) {
          lines.push_back(simple(verbose_word(report), nodeid, report.crash));
        });
        break;
      case 'p':
        each_phase([](const PhaseReport& report) { return report.status == Status::passed && report.when == Phase::call; },
                   [&](const std::string& nodeid, const PhaseReport&) { lines.push_back("PASSED " + nodeid); });
        break;
      case 'x':
        each_phase(with_status(Status::xfailed), [&](const std::string& nodeid, const PhaseReport& report) {
          lines.push_back("XFAIL " + nodeid + (report.message.empty() ? "" : " - " + report.message));
        });
        break;
      case 'X':
        each_phase(with_status(Status::xpassed), [&](const std::string& nodeid, const PhaseReport& report) {
          lines.push_back("XPASS " + nodeid + " " + report.message);
        });
        break;
      case 's': {
        // pytest's _folded_skips: one line per place and reason, with how many.
        std::vector<std::tuple<std::string, std::string, int>> folded;
        auto fold = [&](const std::string& where, const std::string& reason) {
          auto same = std::find_if(folded.begin(), folded.end(), [&](const auto& entry) {
            return std::get<0>(entry) == where && std::get<1>(entry) == reason;
          });
          if (same != folded.end()) {
            ++std::get<2>(*same);
          } else {
            folded.emplace_back(where, reason, 1);
          }
        };
        for (const auto& skip : collection.skips) {
          fold(skip.file + ":" + std::to_string(skip.line), strip_skipped_prefix(skip.reason));
        }
        // Every line takes the first skip's word, as pytest's show_skipped() does: a
        // plugin's (pytest-subtests' SUBSKIP) unless a plain skip came first.
        std::string word = collection.skips.empty() ? "" : "SKIPPED";
        each_phase(with_status(Status::skipped), [&](const std::string& nodeid, const PhaseReport& report) {
          if (word.empty()) word = verbose_word(report);
          fold(report.skip_where.empty() ? nodeid : report.skip_where, strip_skipped_prefix(report.message));
        });
        for (const auto& [where, reason, count] : folded) {
          lines.push_back(word + " [" + std::to_string(count) + "] " + where + ": " + reason);
        }
        break;
      }
      default: break;  // 'w' (the warnings summary), 'P' (passes with their output): elsewhere or not shown
    }
  }
  return lines;
}

void Reporter::passes_section(const common::Collection& collection,
                              const std::vector<std::optional<TestResult>>& results) {
  // pytest's summary_passes (-rP, -rA): each passed test's captured output, then what its
  // teardown captured.
  if (collection.reportchars.find('P') == std::string::npos) return;
  auto print_section = [&](const std::string& name, const std::string& text) {
    std::fprintf(m_out, "%s\n%s", ruled(name, '-').c_str(), text.c_str());
    if (text.empty() || text.back() != '\n') std::fputc('\n', m_out);
  };
  bool any = false;
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (!results[i]) continue;
    for (const PhaseReport& report : results[i]->phases) {
      if (report.when != Phase::call || report.status != Status::passed) continue;
      if (!any) header("PASSES");
      any = true;
      if (!report.sections.empty()) {
        std::fprintf(m_out, "%s\n", ruled(head_line(collection.items[i].nodeid), '_').c_str());
        for (const auto& [name, text] : report.sections) print_section(name, text);
      }
      for (const PhaseReport& teardown : results[i]->phases) {
        if (teardown.when != Phase::teardown) continue;
        for (const auto& [name, text] : teardown.sections) {
          if (name.find("teardown") != std::string::npos) print_section(name, text);
        }
      }
    }
  }
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
  const std::vector<std::string> summary = short_summary(collection, {});
  if (!summary.empty()) {
    header("short test summary info");
    for (const auto& text : summary) std::fprintf(m_out, "%s\n", text.c_str());
  }
  stop_line(stop_message);
  closing_line(collect_only_summary(selection.size(), collection.deselected, collection.errors.size(), elapsed));
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
      if (!file.empty() && !marks.empty()) std::fprintf(m_out, "%s %s\n", shown(file).c_str(), marks.c_str());
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
        if (counted(report)) marks += letter(report);
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
    if (collection.tbstyle == "no") return;  // pytest's --tb=no: neither section
    const bool failures = std::string_view(title) == "FAILURES";
    bool any = !failures && errors_shown;
    for (std::size_t i = 0; i < results.size(); ++i) {
      if (!results[i]) continue;
      for (const PhaseReport& report : results[i]->phases) {
        if (!wanted(report)) continue;
        if (!any) header(title);
        any = true;
        if (failures && collection.tbstyle == "line") {  // one line each, as pytest's --tb=line
          std::fprintf(m_out, "%s\n", (report.crash_line.empty() ? report.longrepr : report.crash_line).c_str());
          continue;
        }
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
  const auto head = [](const common::TestItem& item, const PhaseReport& report) {
    return report.head_line.empty() ? head_line(item.nodeid) : report.head_line;
  };
  section("ERRORS", is_error_report, [&](const common::TestItem& item, const PhaseReport& report) {
    return std::string("ERROR at ") + std::string(common::to_string(report.when)) + " of " + head(item, report);
  });
  section("FAILURES",
          [](const PhaseReport& report) { return report.status == Status::failed; },
          [&](const common::TestItem& item, const PhaseReport& report) { return head(item, report); });
  warnings_section(collection, warnings);
  passes_section(collection, results);
  if (!m_junit_path.empty()) std::fprintf(m_out, "%s\n", ruled("generated xml file: " + m_junit_path, '-').c_str());
  std::fputs(m_plugin_summary.c_str(), m_out);
  rerun_section(collection, results);

  const std::vector<std::string> summary = short_summary(collection, results);
  if (!summary.empty()) {
    header("short test summary info");
    for (const auto& text : summary) std::fprintf(m_out, "%s\n", text.c_str());
  }
  stop_line(stop_message);
  closing_line(summary_text(counts, elapsed));
  std::fflush(m_out);
  return counts;
}

}  // namespace drover::cli
