#include "coordinator/coordinator_config.h"

#include <cctype>
#include <charconv>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

namespace drover::coordinator {
namespace {

using common::ErrorCode;
using common::fail;
using common::Result;

std::filesystem::path resolve(const std::filesystem::path& base, const std::string& value) {
  const std::filesystem::path path(value);
  return path.is_absolute() ? path : base / path;
}

Result<std::string> read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return fail(ErrorCode::io, fmt::format("{}: cannot read file", path.string()));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

Result<CoordinatorConfig> load_coordinator_config(const std::filesystem::path& path,
                                                  CoordinatorConfig config) {
  const std::string name = path.string();
  auto text = read_text(path);
  if (!text) return std::unexpected(text.error());
  const std::filesystem::path base = path.parent_path();
  try {
    const YAML::Node root = YAML::Load(*text);
    if (root.IsNull()) return config;
    if (!root.IsMap()) return fail(ErrorCode::usage, fmt::format("{}: expected a mapping of settings", name));
    for (const auto& entry : root) {
      const auto key = entry.first.as<std::string>();
      const YAML::Node& value = entry.second;
      auto bad = [&](std::string_view expected) {
        return fail(ErrorCode::usage, fmt::format("{}: '{}' must be {}", name, key, expected));
      };
      if (key == "bind" || key == "http" || key == "data" || key == "http_token" ||
          key == "http_token_file" || key == "key_file") {
        if (!value.IsScalar()) return bad("a string");
        const auto word = value.as<std::string>();
        if (key == "bind") config.bind = word;
        if (key == "http") config.http = word;
        if (key == "data") config.data = resolve(base, word);
        if (key == "http_token") config.http_token = word;
        if (key == "http_token_file") {
          auto token = read_text(resolve(base, word));
          if (!token) return std::unexpected(token.error());
          config.http_token = *token;
          while (!config.http_token.empty() && std::isspace(static_cast<unsigned char>(config.http_token.back()))) {
            config.http_token.pop_back();
          }
        }
        if (key == "key_file") {
          auto keys = common::load_curve_keys(resolve(base, word));
          if (!keys) return std::unexpected(keys.error());
          if (keys->secret_key.empty()) {
            return fail(ErrorCode::usage, fmt::format("{}: key_file {} holds no secret key", name, word));
          }
          config.keys = *keys;
        }
      } else if (key == "agent_keys" || key == "client_keys" || key == "job_keys") {
        if (!value.IsSequence()) return bad("a list of public keys or key files");
        const std::string role = key == "agent_keys" ? "agent" : key == "client_keys" ? "client" : "job";
        for (const auto& item : value) {
          if (!item.IsScalar()) return bad("a list of public keys or key files");
          const auto word = item.as<std::string>();
          std::string public_key = word;
          if (!common::is_z85_key(word)) {
            auto keys = common::load_curve_keys(resolve(base, word));
            if (!keys) return std::unexpected(keys.error());
            public_key = keys->public_key;
          }
          // A key allowed in two roles may connect as either: a job's.
          auto [allowed, added] = config.allow.try_emplace(public_key, role);
          if (!added && allowed->second != role) allowed->second = "job";
        }
      } else if (key == "heartbeat_interval_ms" || key == "heartbeat_lost_after") {
        if (!value.IsScalar()) return bad("a whole number");
        int number = 0;
        try {
          number = value.as<int>();
        } catch (const YAML::Exception&) {
          return bad("a whole number");
        }
        if (number < 1) return bad("at least 1");
        (key == "heartbeat_interval_ms" ? config.heartbeat_interval_ms : config.heartbeat_lost_after) = number;
      } else if (key == "no_agent_timeout") {
        double seconds = 0.0;
        try {
          seconds = value.IsScalar() ? value.as<double>() : -1.0;
        } catch (const YAML::Exception&) {
          return bad("a number of seconds");
        }
        if (!(seconds > 0.0)) return bad("a number of seconds above 0");
        config.no_agent_timeout = seconds;
      } else {
        return fail(ErrorCode::usage, fmt::format("{}: unknown setting '{}'", name, key));
      }
    }
  } catch (const YAML::Exception& e) {
    return fail(ErrorCode::usage, fmt::format("{}: invalid YAML: {} (line {})", name, e.msg, e.mark.line + 1));
  }
  return config;
}

bool is_local_endpoint(const std::string& endpoint) {
  if (endpoint.starts_with("ipc://") || endpoint.starts_with("inproc://")) return true;
  for (std::string_view prefix : {"tcp://127.", "tcp://localhost:", "tcp://[::1]:", "tcp://lo:"}) {
    if (endpoint.starts_with(prefix)) return true;
  }
  return false;
}

Result<std::string> check_security(const CoordinatorConfig& config) {
  if (config.keys) {
    if (config.allow.empty()) {
      return fail(ErrorCode::usage, "CURVE keys are configured but no agent_keys, client_keys or job_keys: "
                                    "nobody could connect");
    }
    if (config.http_token.empty() && !config.http.empty()) {
      return std::string("the HTTP API has no http_token: anyone who can reach it may read and upload");
    }
    return std::string();
  }
  const bool local_http = config.http.empty() || config.http.starts_with("127.") ||
                          config.http.starts_with("localhost:") || config.http.starts_with("[::1]:");
  if (is_local_endpoint(config.bind) && local_http) return std::string();
  if (!config.insecure) {
    return fail(ErrorCode::usage,
                fmt::format("refusing to listen on {} without CURVE keys (key_file, agent_keys, "
                            "client_keys in --config); pass --insecure to allow it",
                            is_local_endpoint(config.bind) ? config.http : config.bind));
  }
  return fmt::format("INSECURE: listening on {} without CURVE keys; anyone who can reach it can "
                     "run code on the agents",
                     config.bind);
}

Result<std::pair<std::string, int>> parse_host_port(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return fail(ErrorCode::usage, fmt::format("'{}' is not HOST:PORT", text));
  }
  std::string host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  int port = -1;
  const char* first = text.data() + colon + 1;
  const char* last = text.data() + text.size();
  auto [end, error] = std::from_chars(first, last, port);
  if (error != std::errc() || end != last || port < 0 || port > 65535) {
    return fail(ErrorCode::usage, fmt::format("'{}' has no valid port", text));
  }
  return std::pair{host, port};
}

}  // namespace drover::coordinator
