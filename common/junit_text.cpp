#include "common/junit_text.h"

#include <cstdint>
#include <cstdio>
#include <vector>

namespace drover::common {
namespace {

// Decodes one UTF-8 sequence at text[pos]; returns its length, or 0 when the
// bytes there are not valid UTF-8 (then the caller escapes one byte).
std::size_t decode_utf8(std::string_view text, std::size_t pos, std::uint32_t& cp) {
  const auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(text[pos + i]); };
  const std::uint8_t b0 = byte(0);
  std::size_t len = 0;
  std::uint32_t min = 0;
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  } else if ((b0 & 0xE0) == 0xC0) {
    len = 2, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (pos + len > text.size()) return 0;
  for (std::size_t i = 1; i < len; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

// pytest's illegal_xml_re, as it really behaves: its "\u10000-\u10FFFF" is read
// by Python as "\u1000", "0-\u10FF", "F", "F", so U+007F is allowed and
// everything above U+FFFD is escaped.
bool pytest_allows(std::uint32_t cp) {
  return cp == 0x09 || cp == 0x0A || cp == 0x0D || (cp >= 0x20 && cp <= 0xD7FF) ||
         (cp >= 0xE000 && cp <= 0xFFFD);
}

void append_hex(std::string& out, std::uint32_t value) {
  char buffer[16];
  std::snprintf(buffer, sizeof buffer, value <= 0xFF ? "#x%02X" : "#x%04X", value);
  out += buffer;
}

// `utf8` with each character `allowed` rejects (and each byte that is not UTF-8) as "#xNN".
template <class Allowed>
std::string escape_unless(std::string_view utf8, Allowed allowed) {
  std::string out;
  out.reserve(utf8.size());
  std::size_t pos = 0;
  while (pos < utf8.size()) {
    std::uint32_t cp = 0;
    const std::size_t len = decode_utf8(utf8, pos, cp);
    if (len == 0) {
      append_hex(out, static_cast<std::uint8_t>(utf8[pos]));
      ++pos;
      continue;
    }
    if (allowed(cp)) {
      out.append(utf8.substr(pos, len));
    } else {
      append_hex(out, cp);
    }
    pos += len;
  }
  return out;
}

}  // namespace

std::string bin_xml_escape(std::string_view utf8) { return escape_unless(utf8, pytest_allows); }

std::string xml_safe(std::string_view utf8) {
  return escape_unless(utf8, [](std::uint32_t cp) { return pytest_allows(cp) || (cp >= 0x10000 && cp <= 0x10FFFF); });
}

TestAddress mangle_test_address(std::string_view nodeid) {
  const std::size_t bracket = nodeid.find('[');
  const std::string_view path = nodeid.substr(0, bracket);
  const std::string_view params = bracket == std::string_view::npos ? std::string_view{} : nodeid.substr(bracket);
  std::vector<std::string> names;
  std::size_t start = 0;
  while (true) {
    const std::size_t sep = path.find("::", start);
    names.emplace_back(path.substr(start, sep == std::string_view::npos ? sep : sep - start));
    if (sep == std::string_view::npos) break;
    start = sep + 2;
  }
  std::string& first = names.front();
  for (char& c : first) {
    if (c == '/') c = '.';
  }
  if (first.ends_with(".py")) first.resize(first.size() - 3);
  names.back() += params;
  TestAddress address;
  for (std::size_t i = 0; i + 1 < names.size(); ++i) {
    if (i > 0) address.classname += '.';
    address.classname += names[i];
  }
  address.name = std::move(names.back());
  return address;
}

std::string python_repr(std::string_view text) {
  const bool has_single = text.find('\'') != std::string_view::npos;
  const bool has_double = text.find('"') != std::string_view::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == quote || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (byte < 0x20 || byte == 0x7F) {
      char buffer[8];
      std::snprintf(buffer, sizeof buffer, "\\x%02x", byte);
      out += buffer;
    } else {
      out += c;
    }
  }
  out += quote;
  return out;
}

std::string python_center(std::string_view text, std::size_t width, char fill) {
  if (text.size() >= width) return std::string(text);
  // CPython: left = marg / 2 + (marg & width & 1).
  const std::size_t marg = width - text.size();
  const std::size_t left = marg / 2 + (marg & width & 1);
  std::string out(left, fill);
  out += text;
  out.append(marg - left, fill);
  return out;
}

std::string format_seconds(double seconds) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.3f", seconds);
  return buffer;
}

}  // namespace drover::common
