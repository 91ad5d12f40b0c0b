#include "cli/warnings_summary.h"

#include <algorithm>
#include <numeric>
#include <string_view>
#include <utility>

namespace drover::cli {
namespace {

// pytest lists the places of a message up to 9; from 10 on it counts them per file.
constexpr std::int64_t k_max_places = 9;

std::string rstrip(std::string text) {
  const auto end = text.find_last_not_of(" \t\n\r\f\v");
  text.erase(end == std::string::npos ? 0 : end + 1);
  return text;
}

std::vector<std::string> split_lines(std::string_view text) {
  std::vector<std::string> lines;
  while (!text.empty()) {
    const auto end = text.find('\n');
    std::string_view line = text.substr(0, end);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.emplace_back(line);
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return lines;
}

std::string counted(std::int64_t count, const char* word) {
  return std::to_string(count) + " " + word + (count == 1 ? "" : "s");
}

}  // namespace

void WarningsSummary::add_session(const std::vector<common::Warning>& warnings) {
  for (const common::Warning& warning : warnings) add(0, warning);
}

void WarningsSummary::take(common::TestResult& result) {
  for (const common::Warning& warning : result.warnings) add(result.index + 1, warning);
  result.warnings.clear();
  result.warnings.shrink_to_fit();
}

void WarningsSummary::add(std::size_t rank, const common::Warning& warning) {
  const std::int64_t count = warning.count;
  if (count <= 0) return;
  m_total += count;
  const Key key{rank, m_seq++};
  auto found = m_group_index.find(warning.message);
  if (found == m_group_index.end()) {
    if (m_groups.size() >= k_max_messages) {
      m_dropped += count;
      return;
    }
    found = m_group_index.emplace(warning.message, m_groups.size()).first;
    Group& created = m_groups.emplace_back();
    created.message = warning.message;
    created.first = key;
  }
  Group& group = m_groups[found->second];
  group.first = std::min(group.first, key);
  if (warning.location.empty()) {
    group.unlocated += count;
    return;
  }
  group.located += count;
  if (group.located <= k_max_places) {
    group.places.insert(group.places.end(), static_cast<std::size_t>(count), Place{key, warning.location});
  } else {
    std::vector<Place>().swap(group.places);
  }
  std::string file = warning.location.substr(0, warning.location.find("::"));
  auto slot = group.file_index.find(file);
  if (slot == group.file_index.end()) {
    if (group.files.size() >= k_max_files) {
      group.unlisted += count;
      return;
    }
    slot = group.file_index.emplace(file, group.files.size()).first;
    group.files.push_back(FileCount{std::move(file), key, 0});
  }
  FileCount& entry = group.files[slot->second];
  entry.first = std::min(entry.first, key);
  entry.count += count;
}

std::vector<std::string> WarningsSummary::lines() const {
  std::vector<std::string> out;
  if (m_total == 0) return out;
  std::vector<std::size_t> order(m_groups.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return m_groups[a].first < m_groups[b].first; });
  for (std::size_t index : order) {
    const Group& group = m_groups[index];
    if (group.located == 0) {
      for (std::string& line : split_lines(rstrip(group.message))) out.push_back(std::move(line));
      out.emplace_back();
      continue;
    }
    if (group.located <= k_max_places) {
      std::vector<Place> places = group.places;
      std::stable_sort(places.begin(), places.end(), [](const Place& a, const Place& b) { return a.key < b.key; });
      for (const Place& place : places) out.push_back(place.location);
    } else {
      std::vector<FileCount> files = group.files;
      std::stable_sort(files.begin(), files.end(), [](const FileCount& a, const FileCount& b) { return a.first < b.first; });
      for (const FileCount& file : files) out.push_back(file.file + ": " + counted(file.count, "warning"));
      if (group.unlisted > 0) {
        out.push_back("[drover: " + counted(group.unlisted, "more warning") + " in files past the first " +
                      std::to_string(k_max_files) + ", not listed]");
      }
    }
    std::string indented;
    for (const std::string& line : split_lines(group.message)) indented += "  " + line + "\n";
    for (std::string& line : split_lines(rstrip(std::move(indented)))) out.push_back(std::move(line));
    out.emplace_back();
  }
  if (m_dropped > 0) {
    out.push_back("[drover: " + counted(m_dropped, "more warning") + " with messages past the first " +
                  std::to_string(k_max_messages) + " different ones, not shown]");
    out.emplace_back();
  }
  out.emplace_back("-- Docs: https://docs.pytest.org/en/stable/how-to/capture-warnings.html");
  return out;
}

}  // namespace drover::cli
