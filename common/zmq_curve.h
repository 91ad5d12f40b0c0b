// CURVE key pairs for the farm: generation, checking and key files.
//
// Keys are Z85 text, 40 characters each (ZeroMQ's own encoding of 32 bytes).
// A key file is a tiny YAML map written by `drover keygen`:
//     public: <Z85>
//     secret: <Z85>
// Files without `secret` hold a public key only (what the coordinator's
// allow-list and clients need); a file with only `secret` gets its public key
// derived. Secret files are written with mode 0600.
// Failure: one-line Errors naming the file; never throws. Thread-safety: free functions.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "common/error.h"

namespace drover::common {

inline constexpr std::size_t k_z85_key_length = 40;

struct CurveKeyPair {
  std::string public_key;  // Z85
  std::string secret_key;  // Z85; "" when only the public key is known
};

// True when libzmq was built with CURVE support.
[[nodiscard]] bool curve_available();
[[nodiscard]] Result<CurveKeyPair> generate_curve_keypair();
// 40 Z85 characters that decode to 32 bytes.
[[nodiscard]] bool is_z85_key(std::string_view key);
[[nodiscard]] Result<std::string> curve_public_key(std::string_view secret_key);

[[nodiscard]] Result<CurveKeyPair> load_curve_keys(const std::filesystem::path& path);
[[nodiscard]] Result<void> save_curve_keys(const std::filesystem::path& path, const CurveKeyPair& keys);
// The key file text for `keys` (what save_curve_keys writes).
[[nodiscard]] std::string format_curve_keys(const CurveKeyPair& keys);

}  // namespace drover::common
