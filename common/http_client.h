// A small HTTP seam for talking to the coordinator's HTTP API (workspace
// bundles, JUnit reports, durations). The real implementation uses cpp-httplib
// (http:// and, through OpenSSL, https:// with the system's CA certificates);
// tests and callers that need no network can substitute their own HttpClient.
//
// Every request carries `Authorization: Bearer TOKEN` when a token is set,
// and is bounded by a connect timeout, a silence timeout and a total timeout, so
// a dead server never hangs the CLI: the socket is shut down once the total
// timeout has passed, however slowly the server trickles bytes. Name resolution is not
// bounded by either (getaddrinfo blocks). Redirects are not followed and proxy
// variables (http_proxy, ...) are not read. The path is sent as given, so
// callers percent-encode what needs it.
// A bad URL is a usage Error; a transport failure (refused, timed out, reset,
// TLS) is an io Error; any HTTP status is a response, and expect_ok() turns a
// non-2xx one into a one-line Error ("GET URL: HTTP 404: no such run").
// Thread-safety: one HttpClient per thread; separate instances are independent.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/error.h"

namespace drover::common {

struct HttpOptions {
  std::string token;              // bearer token, "" for none
  double connect_timeout = 10.0;  // seconds
  double timeout = 600.0;         // seconds for the whole transfer
  // Seconds without a byte either way once connected: a server that accepted the
  // connection and then says nothing (hung, or a proxy that never answers) is given up
  // on after this, not after the whole `timeout`.
  double silence_timeout = 30.0;
};

struct HttpResponse {
  long status = 0;
  std::string body;
};

class HttpClient {
 public:
  virtual ~HttpClient() = default;
  [[nodiscard]] virtual Result<HttpResponse> get(const std::string& url) = 0;
  // Like get() without the body; for "does the server have this?" questions.
  [[nodiscard]] virtual Result<HttpResponse> head(const std::string& url) = 0;
  [[nodiscard]] virtual Result<HttpResponse> put(const std::string& url, std::string_view body,
                                                 const std::string& content_type) = 0;
};

// The cpp-httplib implementation.
[[nodiscard]] std::unique_ptr<HttpClient> make_http_client(HttpOptions options = {});

// `response` when its status is 2xx, else an io Error naming the method, URL,
// status and the first line of the body.
[[nodiscard]] Result<HttpResponse> expect_ok(std::string_view method, const std::string& url,
                                             Result<HttpResponse> response);

// "http://host:port" + "/api/v1/x" with exactly one slash between them.
[[nodiscard]] std::string join_url(std::string_view base, std::string_view path);

}  // namespace drover::common
