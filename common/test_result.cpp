#include "common/test_result.h"

#include <array>

namespace drover::common {
namespace {

constexpr std::array<std::string_view, 8> k_status_words = {
    "", "passed", "failed", "skipped", "xfailed", "xpassed", "error", "other"};
constexpr std::array<std::string_view, 3> k_phase_words = {"setup", "call", "teardown"};

}  // namespace

std::string_view to_string(Status status) { return k_status_words[static_cast<size_t>(status)]; }
std::string_view to_string(Phase phase) { return k_phase_words[static_cast<size_t>(phase)]; }

bool parse_status(std::string_view word, Status& out) {
  for (size_t i = 0; i < k_status_words.size(); ++i) {
    if (k_status_words[i] == word) {
      out = static_cast<Status>(i);
      return true;
    }
  }
  return false;
}

bool parse_phase(std::string_view word, Phase& out) {
  for (size_t i = 0; i < k_phase_words.size(); ++i) {
    if (k_phase_words[i] == word) {
      out = static_cast<Phase>(i);
      return true;
    }
  }
  return false;
}

Status TestResult::final_status() const {
  Status result = Status::passed;
  for (const PhaseReport& phase : phases) {
    if (phase.status == Status::other) continue;  // a rerun, a subtest: not the test's outcome
    const bool quiet = phase.status == Status::none || phase.status == Status::passed;
    switch (phase.when) {
      case Phase::setup:
        if (!quiet) return phase.status;  // error, skipped or xfailed: call never ran
        break;
      case Phase::call:
        if (phase.status != Status::none) result = phase.status;
        break;
      case Phase::teardown:
        if (!quiet && (result == Status::passed || result == Status::xpassed ||
                       result == Status::skipped || result == Status::xfailed)) {
          result = phase.status;
        }
        break;
    }
  }
  return result;
}

double TestResult::duration() const {
  double total = 0.0;
  for (const PhaseReport& phase : phases) total += phase.duration;
  return total;
}

TestResult synthetic_result(TestIndex index, Status status, std::string message,
                            std::string longrepr, std::string worker) {
  PhaseReport report;
  report.when = Phase::call;
  report.outcome = status == Status::passed ? "passed" : status == Status::skipped ? "skipped" : "failed";
  report.status = status;
  // drover's own words are the crash message: the short summary and JUnit show them.
  if (status == Status::failed || status == Status::error) report.crash = message;
  report.message = std::move(message);
  report.longrepr = std::move(longrepr);
  TestResult result;
  result.index = index;
  result.worker = std::move(worker);
  result.phases.push_back(std::move(report));
  return result;
}

}  // namespace drover::common
