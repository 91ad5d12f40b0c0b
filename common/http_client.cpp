#include "common/http_client.h"

#include <httplib.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <thread>
#include <utility>

namespace drover::common {
namespace {

using Clock = std::chrono::steady_clock;

// "0.3s", "600s": timeouts as the user wrote them.
std::string seconds_text(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%gs", seconds);
  return text;
}

struct ParsedUrl {
  bool https = false;
  std::string host;    // without the brackets of an IPv6 literal
  int port = 0;
  std::string target;  // path and query, sent as given (callers percent-encode)
};

Result<ParsedUrl> parse_url(const std::string& url) {
  const auto bad = [&](const std::string& why) {
    return fail(ErrorCode::usage, "bad URL '" + url + "': " + why);
  };
  if (std::any_of(url.begin(), url.end(), [](unsigned char c) { return c <= ' ' || c == 0x7f; })) {
    return bad("it contains a space or control character");
  }
  const auto sep = url.find("://");
  if (sep == std::string::npos) return bad("expected http://HOST[:PORT]/PATH or https://...");
  std::string scheme = url.substr(0, sep);
  std::transform(scheme.begin(), scheme.end(), scheme.begin(), [](unsigned char c) { return std::tolower(c); });
  if (scheme != "http" && scheme != "https") return bad("unsupported scheme '" + scheme + "' (http or https)");
  ParsedUrl parsed;
  parsed.https = scheme == "https";
  const std::string rest = url.substr(sep + 3);
  const auto authority_end = rest.find_first_of("/?#");
  const std::string authority = rest.substr(0, authority_end);
  parsed.target = authority_end == std::string::npos ? "/" : rest.substr(authority_end);
  parsed.target = parsed.target.substr(0, parsed.target.find('#'));
  if (parsed.target.empty() || parsed.target.front() != '/') parsed.target.insert(0, "/");
  if (authority.find('@') != std::string::npos) return bad("credentials in the URL are not supported; use a token");
  std::string port;
  if (authority.starts_with('[')) {
    const auto close = authority.find(']');
    if (close == std::string::npos) return bad("unterminated IPv6 address");
    parsed.host = authority.substr(1, close - 1);
    const std::string after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') return bad("unexpected '" + after + "' after the IPv6 address");
    if (!after.empty()) port = after.substr(1);
    if (after == ":") return bad("empty port");
  } else {
    const auto colon = authority.find(':');
    parsed.host = authority.substr(0, colon);
    if (colon != std::string::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) return bad("empty port");
    }
  }
  if (parsed.host.empty()) return bad("no host");
  if (port.empty()) {
    parsed.port = parsed.https ? 443 : 80;
  } else {
    if (port.size() > 5 || !std::all_of(port.begin(), port.end(), [](unsigned char c) { return std::isdigit(c); })) {
      return bad("port '" + port + "' is not a number");
    }
    parsed.port = std::stoi(port);
    if (parsed.port < 1 || parsed.port > 65535) return bad("port " + port + " is out of range");
  }
  return parsed;
}

// Shuts the client's socket down if the request outlives its deadline, so a
// server that trickles bytes cannot stretch a request past the total timeout.
class Watchdog {
 public:
  Watchdog(httplib::ClientImpl& client, double seconds)
      : m_thread([this, &client, seconds] {
          std::unique_lock lock(m_mutex);
          const auto limit = std::chrono::duration<double>(seconds);
          if (m_cv.wait_for(lock, limit, [this] { return m_done; })) return;
          m_fired = true;
          lock.unlock();
          client.stop();  // thread-safe: shuts the in-flight socket down
        }) {}
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;
  ~Watchdog() { finish(); }

  // Stops the watch; true when the deadline passed first.
  bool finish() {
    {
      std::lock_guard lock(m_mutex);
      m_done = true;
    }
    m_cv.notify_one();
    if (m_thread.joinable()) m_thread.join();
    return m_fired;
  }

 private:
  std::mutex m_mutex;
  std::condition_variable m_cv;
  bool m_done = false;
  bool m_fired = false;
  std::thread m_thread;  // last: starts once the members above exist
};

// Writing to a socket that is shut down raises SIGPIPE, which kills a process
// that does not ignore it (`drover agent`, `drover durations`). libcurl sent
// with MSG_NOSIGNAL; cpp-httplib checks the socket before each write, but the
// server or the watchdog can close it in between. Block SIGPIPE on this thread
// for the request and swallow one it raised, so the write just fails.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigemptyset(&m_pipe);
    sigaddset(&m_pipe, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    m_was_pending = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &m_pipe, &m_old);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;
  ~SigpipeBlock() {
    if (!m_was_pending) {
      sigset_t pending;
      sigpending(&pending);
      if (sigismember(&pending, SIGPIPE) == 1) {
        const timespec zero{};
        sigtimedwait(&m_pipe, nullptr, &zero);
      }
    }
    pthread_sigmask(SIG_SETMASK, &m_old, nullptr);
  }

 private:
  sigset_t m_pipe{};
  sigset_t m_old{};
  bool m_was_pending = false;
};

std::string describe(httplib::Error error, const ParsedUrl& url, double connect_timeout) {
  const std::string where = url.host + ":" + std::to_string(url.port);
  switch (error) {
    case httplib::Error::Connection: return "cannot connect to " + where;
    case httplib::Error::ConnectionTimeout:
      return "connecting to " + where + " timed out after " + seconds_text(connect_timeout);
    case httplib::Error::Read: return "connection to " + where + " failed while reading the response";
    case httplib::Error::Write: return "connection to " + where + " failed while sending the request";
    case httplib::Error::SSLConnection: return "TLS handshake with " + where + " failed";
    case httplib::Error::SSLLoadingCerts: return "cannot load the system's CA certificates";
    case httplib::Error::SSLServerVerification: return "the TLS certificate of " + where + " did not verify";
    default: return "request to " + where + " failed (" + httplib::to_string(error) + ")";
  }
}

class HttplibClient final : public HttpClient {
 public:
  explicit HttplibClient(HttpOptions options) : m_options(std::move(options)) {}

  Result<HttpResponse> get(const std::string& url) override { return perform("GET", url, nullptr, {}); }
  Result<HttpResponse> head(const std::string& url) override { return perform("HEAD", url, nullptr, {}); }
  Result<HttpResponse> put(const std::string& url, std::string_view body,
                           const std::string& content_type) override {
    return perform("PUT", url, &body, content_type);
  }

 private:
  Result<HttpResponse> perform(std::string_view method, const std::string& url,
                               const std::string_view* body, const std::string& content_type) {
    const std::string what = std::string(method) + " " + url;
    auto parsed = parse_url(url);
    if (!parsed) return fail(parsed.error().code, what + ": " + parsed.error().message);
    std::unique_ptr<httplib::ClientImpl> client;
    if (parsed->https) {
      client = std::make_unique<httplib::SSLClient>(parsed->host, parsed->port);
    } else {
      client = std::make_unique<httplib::ClientImpl>(parsed->host, parsed->port);
    }
    if (!client->is_valid()) return fail(ErrorCode::internal, what + ": cannot set up the HTTP client");
    // The connect timeout never exceeds the total one; a silent server is also
    // caught by the read/write timeouts, a trickling one by the watchdog.
    const double connect_timeout = std::min(m_options.connect_timeout, m_options.timeout);
    client->set_connection_timeout(std::chrono::duration<double>(connect_timeout));
    const double silence = std::min(m_options.silence_timeout, m_options.timeout);
    client->set_read_timeout(std::chrono::duration<double>(silence));
    client->set_write_timeout(std::chrono::duration<double>(silence));
    client->set_url_encode(false);  // callers percent-encode; send the path as given
    if (!m_options.token.empty()) client->set_bearer_token_auth(m_options.token);

    const auto start = Clock::now();
    SigpipeBlock no_sigpipe;
    Watchdog watchdog(*client, m_options.timeout);
    httplib::Result result = method == "HEAD" ? client->Head(parsed->target)
                             : method == "PUT"
                                 ? client->Put(parsed->target, body->data(), body->size(), content_type)
                                 : client->Get(parsed->target);
    const bool fired = watchdog.finish();
    if (!result) {
      const std::chrono::duration<double> elapsed = Clock::now() - start;
      const bool connect_failed = result.error() == httplib::Error::Connection ||
                                  result.error() == httplib::Error::ConnectionTimeout;
      if (fired || (!connect_failed && elapsed.count() >= m_options.timeout)) {
        return fail(ErrorCode::io, what + ": timed out after " + seconds_text(m_options.timeout));
      }
      const bool transfer_failed = result.error() == httplib::Error::Read || result.error() == httplib::Error::Write;
      if (transfer_failed && silence < m_options.timeout && elapsed.count() >= silence) {
        return fail(ErrorCode::io, what + ": no answer from " + parsed->host + ":" + std::to_string(parsed->port) +
                                       " for " + seconds_text(silence));
      }
      return fail(ErrorCode::io, what + ": " + describe(result.error(), *parsed, connect_timeout));
    }
    return HttpResponse{result->status, std::move(result->body)};
  }

  HttpOptions m_options;
};

}  // namespace

std::unique_ptr<HttpClient> make_http_client(HttpOptions options) {
  return std::make_unique<HttplibClient>(std::move(options));
}

Result<HttpResponse> expect_ok(std::string_view method, const std::string& url,
                               Result<HttpResponse> response) {
  if (!response) return response;
  if (response->status >= 200 && response->status < 300) return response;
  std::string detail = response->body.substr(0, response->body.find('\n'));
  if (detail.size() > 200) detail = detail.substr(0, 200) + "...";
  std::string message = std::string(method) + " " + url + ": HTTP " + std::to_string(response->status);
  if (!detail.empty()) message += ": " + detail;
  return fail(ErrorCode::io, std::move(message));
}

std::string join_url(std::string_view base, std::string_view path) {
  while (!base.empty() && base.back() == '/') base.remove_suffix(1);
  while (!path.empty() && path.front() == '/') path.remove_prefix(1);
  return std::string(base) + "/" + std::string(path);
}

}  // namespace drover::common
