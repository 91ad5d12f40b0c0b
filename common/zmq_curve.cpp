#include "common/zmq_curve.h"

#include <sys/stat.h>

#include <array>
#include <fstream>
#include <sstream>
#include <system_error>

#include <fmt/format.h>
#include <zmq.h>

namespace drover::common {
namespace {

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r' ||
                           text.back() == '"' || text.back() == '\'')) {
    text.remove_suffix(1);
  }
  while (!text.empty() && (text.front() == '"' || text.front() == '\'')) text.remove_prefix(1);
  return text;
}

}  // namespace

bool curve_available() { return zmq_has("curve") != 0; }

Result<CurveKeyPair> generate_curve_keypair() {
  if (!curve_available()) return fail(ErrorCode::internal, "libzmq was built without CURVE");
  std::array<char, k_z85_key_length + 1> public_key{};
  std::array<char, k_z85_key_length + 1> secret_key{};
  if (zmq_curve_keypair(public_key.data(), secret_key.data()) != 0) {
    return fail(ErrorCode::internal,
                fmt::format("cannot generate a CURVE key pair: {}", zmq_strerror(zmq_errno())));
  }
  return CurveKeyPair{public_key.data(), secret_key.data()};
}

bool is_z85_key(std::string_view key) {
  if (key.size() != k_z85_key_length) return false;
  const std::string copy(key);  // zmq_z85_decode needs a terminated string
  std::array<std::uint8_t, 32> bytes{};
  return zmq_z85_decode(bytes.data(), copy.c_str()) != nullptr;
}

Result<std::string> curve_public_key(std::string_view secret_key) {
  if (!is_z85_key(secret_key)) return fail(ErrorCode::usage, "not a Z85 CURVE key (40 characters)");
  const std::string secret(secret_key);
  std::array<char, k_z85_key_length + 1> public_key{};
  if (zmq_curve_public(public_key.data(), secret.c_str()) != 0) {
    return fail(ErrorCode::internal,
                fmt::format("cannot derive a CURVE public key: {}", zmq_strerror(zmq_errno())));
  }
  return std::string(public_key.data());
}

Result<CurveKeyPair> load_curve_keys(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return fail(ErrorCode::io, fmt::format("{}: cannot read key file", path.string()));
  CurveKeyPair keys;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    const std::string_view text = trim(line);
    if (text.empty() || text.front() == '#') continue;
    const auto colon = text.find(':');
    const std::string_view key = colon == std::string_view::npos ? "" : trim(text.substr(0, colon));
    const std::string_view value = colon == std::string_view::npos ? "" : trim(text.substr(colon + 1));
    if ((key != "public" && key != "secret") || !is_z85_key(value)) {
      return fail(ErrorCode::parse,
                  fmt::format("{}:{}: expected 'public: KEY' or 'secret: KEY' with a 40-character "
                              "Z85 key",
                              path.string(), number));
    }
    (key == "public" ? keys.public_key : keys.secret_key) = std::string(value);
  }
  if (!keys.secret_key.empty()) {
    auto derived = curve_public_key(keys.secret_key);
    if (!derived) return fail(derived.error().code, fmt::format("{}: {}", path.string(), derived.error().message));
    if (!keys.public_key.empty() && keys.public_key != *derived) {
      return fail(ErrorCode::parse,
                  fmt::format("{}: public key does not belong to the secret key", path.string()));
    }
    keys.public_key = *derived;
  }
  if (keys.public_key.empty()) return fail(ErrorCode::parse, fmt::format("{}: no key", path.string()));
  return keys;
}

std::string format_curve_keys(const CurveKeyPair& keys) {
  std::string text = "# drover CURVE key pair (Z85); keep the secret key private\n";
  text += fmt::format("public: \"{}\"\n", keys.public_key);
  if (!keys.secret_key.empty()) text += fmt::format("secret: \"{}\"\n", keys.secret_key);
  return text;
}

Result<void> save_curve_keys(const std::filesystem::path& path, const CurveKeyPair& keys) {
  const std::filesystem::path temporary = path.string() + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    if (!out) return fail(ErrorCode::io, fmt::format("{}: cannot write key file", path.string()));
    // Restrict before the secret is written, not after; a public key may be read by all.
    ::chmod(temporary.c_str(), keys.secret_key.empty() ? 0644 : 0600);
    out << format_curve_keys(keys);
    if (!out.flush()) return fail(ErrorCode::io, fmt::format("{}: cannot write key file", path.string()));
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error) {
    return fail(ErrorCode::io, fmt::format("{}: cannot write key file: {}", path.string(), error.message()));
  }
  return {};
}

}  // namespace drover::common
