#include "coordinator/http_api.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/durations.h"
#include "common/junit.h"
#include "common/workspace.h"
#include "coordinator/httplib_adapter.h"
#include "coordinator/log.h"

namespace drover::coordinator {
namespace {

constexpr std::size_t k_http_threads = 32;
constexpr int k_http_read_timeout_s = 10;
constexpr int k_http_keep_alive_s = 2;

using Json = nlohmann::json;

void reply_json(httplib::Response& response, int status, const Json& body) {
  response.status = status;
  // Replace, not throw, on invalid UTF-8: an id from the URL ("%ff") is the client's text.
  response.set_content(body.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json");
}

void reply_error(httplib::Response& response, int status, std::string_view message) {
  reply_json(response, status, Json{{"error", message}});
}

Json run_json(const RunRecord& run) {
  return Json{{"id", run.id},           {"state", run.state},     {"reason", run.reason},
              {"created", run.created}, {"finished", run.finished}, {"tests", run.tests},
              {"reported", run.reported()}, {"counts", run.counts},
              {"collection_hash", run.collection_hash}, {"workspace", run.workspace}};
}

// Run ids come from clients; only plain ones may name a cached file.
bool safe_file_name(const std::string& id) {
  if (id.empty() || id.size() > 128 || id.front() == '.') return false;
  return std::ranges::all_of(id, [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.';
  });
}

common::Result<std::string> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return common::fail(common::ErrorCode::io, fmt::format("{}: cannot read", path.string()));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

common::Result<void> write_file_atomic(const std::filesystem::path& path, std::string_view bytes) {
  const auto temporary = path.string() + fmt::format(".tmp{}", ::getpid()) +
                         std::to_string(std::hash<std::thread::id>{}(std::this_thread::get_id()));
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out.flush()) {
      return common::fail(common::ErrorCode::io, fmt::format("{}: cannot write", path.string()));
    }
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error) {
    std::filesystem::remove(temporary, error);
    return common::fail(common::ErrorCode::io, fmt::format("{}: cannot write", path.string()));
  }
  return {};
}

}  // namespace

struct HttpApi::Impl {
  Store& store;
  HttpApiOptions options;
  httplib::Server server;
  std::thread thread;

  Impl(Store& s, HttpApiOptions o) : store(s), options(std::move(o)) {}

  bool authorized(const httplib::Request& request) const {
    if (options.token.empty()) return true;
    // The scheme is case-insensitive (RFC 9110: "bearer" is "Bearer"); the token is not.
    const std::string header = request.get_header_value("Authorization");
    constexpr std::string_view scheme = "bearer ";
    if (header.size() != scheme.size() + options.token.size()) return false;
    for (std::size_t i = 0; i < scheme.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(header[i])) != scheme[i]) return false;
    }
    return header.compare(scheme.size(), std::string::npos, options.token) == 0;
  }

  void junit(const std::string& id, httplib::Response& response) {
    auto run = store.run(id);
    if (!run) return reply_error(response, 500, run.error().message);
    if (!run->has_value()) return reply_error(response, 404, fmt::format("no run {}", id));
    const bool finished = (*run)->state != "running";
    const auto cached = options.data / "reports" / (id + ".xml");
    if (finished && safe_file_name(id)) {
      if (auto text = read_file(cached)) {
        return response.set_content(*text, "application/xml");
      }
    }
    auto submit = store.submission(id);
    auto results = store.results(id);
    if (!submit || !results || !submit->has_value()) {
      return reply_error(response, 500, !submit ? submit.error().message
                                        : !results ? results.error().message : "no submission");
    }
    common::JunitReport report;
    report.collection = &(*submit)->collection;
    report.results = std::move(*results);
    const double end = finished ? (*run)->finished
                                : std::chrono::duration<double>(
                                      std::chrono::system_clock::now().time_since_epoch()).count();
    report.elapsed = std::max(0.0, end - (*run)->created);
    if (!(*submit)->selection.empty()) {
      report.assigned = (*submit)->selection;
      report.assigned_set = true;
    }
    report.extra_properties = {{"drover.run_id", id}};
    std::error_code ignored;
    std::filesystem::create_directories(options.data / "reports", ignored);
    // Each request writes its own file: concurrent requests never share one.
    const auto path = options.data / "reports" /
                      fmt::format("junit-{}.xml.part",
                                  std::hash<std::thread::id>{}(std::this_thread::get_id()));
    if (auto written = common::write_junit(path, report); !written) {
      return reply_error(response, 500, written.error().message);
    }
    auto text = read_file(path);
    if (finished && safe_file_name(id)) {
      std::filesystem::rename(path, cached, ignored);
    } else {
      std::filesystem::remove(path, ignored);
    }
    if (!text) return reply_error(response, 500, text.error().message);
    response.set_content(*text, "application/xml");
  }

  void put_workspace(const std::string& hash, const httplib::Request& request,
                     httplib::Response& response) {
    const std::string actual = common::sha256_hex(request.body);
    if (actual != hash) {
      return reply_error(response, 400,
                         fmt::format("body has sha256 {}, not {}", actual, hash));
    }
    const auto dir = options.data / "workspaces";
    std::error_code error;
    std::filesystem::create_directories(dir, error);
    const auto path = dir / (hash + ".tar");
    if (std::filesystem::exists(path, error)) return reply_json(response, 200, Json{{"sha256", hash}});
    if (auto written = write_file_atomic(path, request.body); !written) {
      return reply_error(response, 500, written.error().message);
    }
    log()->info("workspace {} stored ({} bytes)", hash, request.body.size());
    reply_json(response, 201, Json{{"sha256", hash}, {"bytes", request.body.size()}});
  }

  // A pytest-split file merged into the history: its values replace the stored
  // ones for its node ids; all or nothing, checked as a durations file is.
  void put_durations(const httplib::Request& request, httplib::Response& response) {
    auto durations = common::parse_durations(request.body, "durations");
    if (!durations) return reply_error(response, 400, durations.error().message);
    if (auto recorded = store.record_durations(*durations); !recorded) {
      return reply_error(response, 500, recorded.error().message);
    }
    log()->info("durations pushed for {} tests", durations->size());
    reply_json(response, 200, Json{{"recorded", durations->size()}});
  }

  void get_workspace(const std::string& hash, httplib::Response& response) {
    auto bytes = read_file(options.data / "workspaces" / (hash + ".tar"));
    if (!bytes) return reply_error(response, 404, fmt::format("no workspace {}", hash));
    response.set_content(std::move(*bytes), "application/x-tar");
  }

  void routes() {
    server.set_payload_max_length(options.max_upload);
    // httplib's default is SO_REUSEPORT, which lets a second coordinator bind the
    // same port and steal half the requests; a busy port must be an error instead.
    server.set_socket_options([](int sock) {
      int yes = 1;
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    // Each connection holds a pool thread while it is open: idle or half-sent
    // connections must not starve health checks and uploads. Timeouts are per read,
    // so a slow but moving upload is not cut.
    server.new_task_queue = [] { return new httplib::ThreadPool(k_http_threads); };
    server.set_read_timeout(std::chrono::seconds(k_http_read_timeout_s));
    server.set_keep_alive_timeout(k_http_keep_alive_s);
    server.set_pre_routing_handler([this](const httplib::Request& request, httplib::Response& response) {
      if (request.path == "/api/v1/health" || authorized(request)) {
        return httplib::Server::HandlerResponse::Unhandled;
      }
      reply_error(response, 401, "missing or wrong bearer token");
      return httplib::Server::HandlerResponse::Handled;
    });
    server.set_error_handler([](const httplib::Request&, httplib::Response& response) {
      if (response.body.empty()) {
        reply_error(response, response.status, response.status == 404 ? "not found" : "bad request");
      }
    });
    server.set_exception_handler([](const httplib::Request&, httplib::Response& response,
                                    std::exception_ptr) { reply_error(response, 500, "internal error"); });
    server.Get("/api/v1/health", [this](const httplib::Request&, httplib::Response& response) {
      const LiveStatus live = options.status ? options.status() : LiveStatus{};
      reply_json(response, 200,
                 Json{{"status", "ok"}, {"protocol", common::farm::k_protocol_version},
                      {"agents", live.agents}, {"clients", live.clients},
                      {"active_runs", live.active_runs}});
    });
    server.Get("/api/v1/runs", [this](const httplib::Request& request, httplib::Response& response) {
      int limit = 100;
      if (request.has_param("limit")) {
        try {
          limit = std::clamp(std::stoi(request.get_param_value("limit")), 1, 10000);
        } catch (const std::exception&) {
          return reply_error(response, 400, "limit must be a number");
        }
      }
      auto runs = store.list_runs(limit);
      if (!runs) return reply_error(response, 500, runs.error().message);
      Json list = Json::array();
      for (const RunRecord& run : *runs) list.push_back(run_json(run));
      reply_json(response, 200, Json{{"runs", list}});
    });
    server.Get(R"(/api/v1/runs/([^/]+))", [this](const httplib::Request& request, httplib::Response& response) {
      auto run = store.run(request.matches[1]);
      if (!run) return reply_error(response, 500, run.error().message);
      if (!run->has_value()) return reply_error(response, 404, fmt::format("no run {}", request.matches[1].str()));
      reply_json(response, 200, run_json(**run));
    });
    server.Get(R"(/api/v1/runs/([^/]+)/junit\.xml)",
               [this](const httplib::Request& request, httplib::Response& response) {
                 junit(request.matches[1], response);
               });
    server.Get("/api/v1/durations", [this](const httplib::Request&, httplib::Response& response) {
      auto durations = store.durations();
      if (!durations) return reply_error(response, 500, durations.error().message);
      reply_json(response, 200, Json(*durations));
    });
    server.Put("/api/v1/durations", [this](const httplib::Request& request, httplib::Response& response) {
      put_durations(request, response);
    });
    server.Put(R"(/api/v1/workspaces/([0-9a-f]{64}))",
               [this](const httplib::Request& request, httplib::Response& response) {
                 put_workspace(request.matches[1], request, response);
               });
    server.Get(R"(/api/v1/workspaces/([0-9a-f]{64}))",
               [this](const httplib::Request& request, httplib::Response& response) {
                 get_workspace(request.matches[1], response);
               });
  }
};

HttpApi::HttpApi(Store& store, HttpApiOptions options)
    : m_impl(std::make_unique<Impl>(store, std::move(options))) {
  m_impl->routes();
}

HttpApi::~HttpApi() { stop(); }

common::Result<int> HttpApi::start(const std::string& host, int port) {
  int bound = port;
  if (port == 0) {
    bound = m_impl->server.bind_to_any_port(host);
  } else if (!m_impl->server.bind_to_port(host, port)) {
    bound = -1;
  }
  if (bound <= 0) {
    return common::fail(common::ErrorCode::io, fmt::format("cannot listen on {}:{}", host, port));
  }
  m_impl->thread = std::thread([this] { m_impl->server.listen_after_bind(); });
  // stop() before the accept loop runs would be lost; wait until it runs.
  for (int i = 0; i < 5000 && !m_impl->server.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return bound;
}

void HttpApi::stop() {
  if (!m_impl->thread.joinable()) return;
  m_impl->server.stop();
  m_impl->thread.join();
}

}  // namespace drover::coordinator
