#include "common/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <mutex>
#include <utility>

namespace drover::common {
namespace {

// curl_global_init is not thread-safe; run it once before the first handle.
void init_curl_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::size_t write_body(char* data, std::size_t size, std::size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

struct UploadCursor {
  std::string_view data;
};

std::size_t read_body(char* buffer, std::size_t size, std::size_t count, void* user) {
  auto* cursor = static_cast<UploadCursor*>(user);
  const std::size_t n = std::min(size * count, cursor->data.size());
  std::copy_n(cursor->data.data(), n, buffer);
  cursor->data.remove_prefix(n);
  return n;
}

struct CurlDeleter {
  void operator()(CURL* curl) const { curl_easy_cleanup(curl); }
};
struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};

class CurlHttpClient final : public HttpClient {
 public:
  explicit CurlHttpClient(HttpOptions options) : m_options(std::move(options)) { init_curl_once(); }

  Result<HttpResponse> get(const std::string& url) override { return perform("GET", url, nullptr, {}); }
  Result<HttpResponse> head(const std::string& url) override { return perform("HEAD", url, nullptr, {}); }
  Result<HttpResponse> put(const std::string& url, std::string_view body,
                           const std::string& content_type) override {
    return perform("PUT", url, &body, content_type);
  }

 private:
  Result<HttpResponse> perform(std::string_view method, const std::string& url,
                               const std::string_view* body, const std::string& content_type) {
    std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
    if (!curl) return fail(ErrorCode::internal, "cannot initialise libcurl");
    CURL* h = curl.get();
    HttpResponse response;
    char error[CURL_ERROR_SIZE] = {};
    curl_slist* raw_headers = nullptr;
    if (!m_options.token.empty()) {
      raw_headers = curl_slist_append(raw_headers, ("Authorization: Bearer " + m_options.token).c_str());
    }
    if (body != nullptr) {
      raw_headers = curl_slist_append(raw_headers, ("Content-Type: " + content_type).c_str());
      // A large body would otherwise wait a second for "100 Continue".
      raw_headers = curl_slist_append(raw_headers, "Expect:");
    }
    std::unique_ptr<curl_slist, SlistDeleter> headers(raw_headers);
    UploadCursor cursor{body != nullptr ? *body : std::string_view{}};
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(m_options.connect_timeout * 1000));
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(m_options.timeout * 1000));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &response.body);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
    if (method == "HEAD") {
      curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (method == "PUT") {
      curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(h, CURLOPT_READFUNCTION, read_body);
      curl_easy_setopt(h, CURLOPT_READDATA, &cursor);
      curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(cursor.data.size()));
    }
    const CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
      const std::string why = error[0] != '\0' ? error : curl_easy_strerror(rc);
      return fail(ErrorCode::io, std::string(method) + " " + url + ": " + why);
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &response.status);
    return response;
  }

  HttpOptions m_options;
};

}  // namespace

std::unique_ptr<HttpClient> make_http_client(HttpOptions options) {
  return std::make_unique<CurlHttpClient>(std::move(options));
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
