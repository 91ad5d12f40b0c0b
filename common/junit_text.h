// Text rules JUnit reports share with pytest's junitxml plugin: its escaping of
// characters XML cannot carry, its mapping of a node id to classname and name,
// and the small Python formatting habits visible in its output.
//
// Pure functions over strings; no failure modes (bad UTF-8 is escaped, not
// rejected). Thread-safety: free functions.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace drover::common {

// pytest's bin_xml_escape: every character outside pytest's allowed set becomes
// the visible text "#xNN" (or "#xNNNN"); note pytest escapes characters above
// U+FFFF too and keeps U+007F. Bytes that are not valid UTF-8 become "#xNN".
[[nodiscard]] std::string bin_xml_escape(std::string_view utf8);

// For the fields pytest writes without bin_xml_escape (a testcase's classname, a skip's
// message): characters above U+FFFF stay as they are, as in pytest's report; only what
// XML 1.0 cannot carry becomes "#xNN" (pytest would write a malformed report there).
[[nodiscard]] std::string xml_safe(std::string_view utf8);

// pytest's mangle_test_address: "pkg/test_a.py::TestX::test_y[a/b]" ->
// classname "pkg.test_a.TestX", name "test_y[a/b]". Collector ids work too:
// "pkg/test_bad.py" -> classname "", name "pkg.test_bad".
struct TestAddress {
  std::string classname;
  std::string name;
  friend bool operator==(const TestAddress&, const TestAddress&) = default;
  friend auto operator<=>(const TestAddress&, const TestAddress&) = default;
};
[[nodiscard]] TestAddress mangle_test_address(std::string_view nodeid);

// Python's repr() of a str: '...' (or "..." when the text holds ' but not ").
[[nodiscard]] std::string python_repr(std::string_view text);

// Python's str.center(width, fill).
[[nodiscard]] std::string python_center(std::string_view text, std::size_t width, char fill);

// "%.3f", pytest's format for every time attribute.
[[nodiscard]] std::string format_seconds(double seconds);

}  // namespace drover::common
