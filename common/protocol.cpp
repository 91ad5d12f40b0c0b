#include "common/protocol.h"

#include <array>
#include <algorithm>
#include <exception>
#include <fmt/format.h>
#include <type_traits>
#include <utility>

#include <msgpack.hpp>

namespace drover::common::farm {
namespace {

constexpr std::string_view k_magic = "drover";

// Types encoded as nested msgpack maps through fields() below.
template <class T>
inline constexpr bool k_is_record =
    std::is_same_v<T, TestItem> || std::is_same_v<T, CollectError> ||
    std::is_same_v<T, CollectSkip> || std::is_same_v<T, JunitIni> || std::is_same_v<T, Collection> ||
    std::is_same_v<T, PhaseReport> || std::is_same_v<T, Warning> || std::is_same_v<T, TestResult> ||
    std::is_same_v<T, Hello> || std::is_same_v<T, Welcome> || std::is_same_v<T, Heartbeat> ||
    std::is_same_v<T, WorkRequest> || std::is_same_v<T, Lease> ||
    std::is_same_v<T, TestResultMsg> || std::is_same_v<T, LeaseDone> ||
    std::is_same_v<T, HandBack> || std::is_same_v<T, Cancel> || std::is_same_v<T, Shutdown> ||
    std::is_same_v<T, RunSubmit> || std::is_same_v<T, RunAccepted> ||
    std::is_same_v<T, ResultStream> || std::is_same_v<T, RunFinished> ||
    std::is_same_v<T, ErrorMsg>;

// A vector of records: an array of nested maps.
template <class T>
inline constexpr bool k_is_record_vector = false;
template <class T>
inline constexpr bool k_is_record_vector<std::vector<T>> = k_is_record<T>;

// The one list of wire keys per record, shared by the writer and the reader so
// the two cannot drift apart. Keys are stable: renaming one is a protocol change.
template <class V, class M>
void fields(V& v, M& m) {
  using T = std::remove_const_t<M>;
  if constexpr (std::is_same_v<T, TestItem>) {
    v("nodeid", m.nodeid), v("file", m.file), v("cls", m.cls), v("line", m.line);
    v("markers", m.markers);
  } else if constexpr (std::is_same_v<T, CollectError>) {
    v("nodeid", m.nodeid), v("longrepr", m.longrepr), v("message", m.message);
  } else if constexpr (std::is_same_v<T, CollectSkip>) {
    v("nodeid", m.nodeid), v("file", m.file), v("line", m.line), v("reason", m.reason);
  } else if constexpr (std::is_same_v<T, JunitIni>) {
    v("suite_name", m.suite_name), v("family", m.family), v("logging", m.logging);
    v("duration_report", m.duration_report), v("log_passing_tests", m.log_passing_tests);
    v("error", m.error);
  } else if constexpr (std::is_same_v<T, Collection>) {
    v("items", m.items), v("hash", m.hash), v("errors", m.errors), v("skips", m.skips);
    v("rootdir", m.rootdir), v("junit", m.junit);
  } else if constexpr (std::is_same_v<T, PhaseReport>) {
    v("when", m.when), v("outcome", m.outcome), v("status", m.status);
    v("duration", m.duration), v("longrepr", m.longrepr), v("message", m.message);
    v("sections", m.sections), v("crash", m.crash), v("properties", m.properties);
    v("skip_where", m.skip_where), v("category", m.category), v("letter", m.letter), v("word", m.word);
    v("crash_line", m.crash_line), v("head_line", m.head_line);
  } else if constexpr (std::is_same_v<T, Warning>) {
    v("location", m.location), v("message", m.message), v("count", m.count);
  } else if constexpr (std::is_same_v<T, TestResult>) {
    v("index", m.index), v("worker", m.worker), v("phases", m.phases), v("warnings", m.warnings);
  } else if constexpr (std::is_same_v<T, Hello>) {
    v("role", m.role), v("name", m.name), v("protocol_min", m.protocol_min);
    v("protocol_max", m.protocol_max), v("drover_version", m.drover_version);
    v("slots", m.slots), v("labels", m.labels), v("capabilities", m.capabilities);
    v("run_id", m.run_id);
  } else if constexpr (std::is_same_v<T, Welcome>) {
    v("protocol", m.protocol), v("peer_id", m.peer_id);
    v("heartbeat_interval_ms", m.heartbeat_interval_ms);
    v("heartbeat_lost_after", m.heartbeat_lost_after), v("capabilities", m.capabilities);
  } else if constexpr (std::is_same_v<T, Heartbeat>) {
    v("seq", m.seq);
  } else if constexpr (std::is_same_v<T, WorkRequest>) {
    v("credits", m.credits);
  } else if constexpr (std::is_same_v<T, Lease>) {
    v("run_id", m.run_id), v("lease_id", m.lease_id), v("tests", m.tests);
    v("speculative", m.speculative), v("workspace", m.workspace), v("workdir", m.workdir);
    v("pytest_args", m.pytest_args), v("collection_hash", m.collection_hash);
    v("collection_size", m.collection_size), v("timeout", m.timeout);
  } else if constexpr (std::is_same_v<T, TestResultMsg>) {
    v("run_id", m.run_id), v("lease_id", m.lease_id), v("result", m.result);
  } else if constexpr (std::is_same_v<T, LeaseDone>) {
    v("run_id", m.run_id), v("lease_id", m.lease_id);
  } else if constexpr (std::is_same_v<T, HandBack>) {
    v("run_id", m.run_id), v("lease_id", m.lease_id), v("tests", m.tests);
    v("reason", m.reason);
  } else if constexpr (std::is_same_v<T, Cancel>) {
    v("run_id", m.run_id), v("tests", m.tests), v("reason", m.reason), v("stop_running", m.stop_running);
  } else if constexpr (std::is_same_v<T, Shutdown>) {
    v("reason", m.reason);
  } else if constexpr (std::is_same_v<T, RunSubmit>) {
    v("run_id", m.run_id), v("workspace", m.workspace), v("workdir", m.workdir);
    v("pytest_args", m.pytest_args), v("collection", m.collection);
    v("selection", m.selection), v("group_by", m.group_by), v("durations", m.durations);
    v("speculate", m.speculate), v("max_losses", m.max_losses), v("queue", m.queue);
    v("slots", m.slots), v("pytest_version", m.pytest_version), v("timeout", m.timeout);
  } else if constexpr (std::is_same_v<T, RunAccepted>) {
    v("run_id", m.run_id), v("tests", m.tests), v("joined", m.joined);
  } else if constexpr (std::is_same_v<T, ResultStream>) {
    v("run_id", m.run_id), v("result", m.result);
  } else if constexpr (std::is_same_v<T, RunFinished>) {
    v("run_id", m.run_id), v("state", m.state), v("reason", m.reason);
    v("counts", m.counts), v("elapsed", m.elapsed);
  } else if constexpr (std::is_same_v<T, ErrorMsg>) {
    v("code", m.code), v("message", m.message), v("run_id", m.run_id);
  } else {
    static_assert(!std::is_same_v<T, T>, "no wire fields for this type");
  }
}

// Writes a record as a msgpack map. The body is packed first and counted, then
// prefixed with the map header, so fields() needs no separate count.
class MapWriter {
 public:
  template <class T>
  void operator()(std::string_view key, const T& value) {
    m_packer.pack(key);
    put(m_packer, value);
    ++m_count;
  }

  template <class T>
  static void put(msgpack::packer<msgpack::sbuffer>& out, const T& value) {
    if constexpr (k_is_record<T>) {
      MapWriter inner;
      fields(inner, value);
      out.pack_map(static_cast<std::uint32_t>(inner.m_count));
      // pack_bin_body appends bytes verbatim (no header): the already packed pairs.
      out.pack_bin_body(inner.m_buffer.data(), static_cast<std::uint32_t>(inner.m_buffer.size()));
    } else if constexpr (std::is_same_v<T, Phase> || std::is_same_v<T, Status>) {
      out.pack(to_string(value));
    } else if constexpr (k_is_record_vector<T>) {
      out.pack_array(static_cast<std::uint32_t>(value.size()));
      for (const auto& element : value) put(out, element);
    } else {
      out.pack(value);
    }
  }

 private:
  msgpack::sbuffer m_buffer;
  msgpack::packer<msgpack::sbuffer> m_packer{m_buffer};
  std::size_t m_count = 0;
};

// Reads a record from a msgpack map. Missing keys keep their defaults (older
// peers), unknown keys are ignored (newer peers); a present key of the wrong type
// is an error, since that is a broken peer, not a different version.
class MapReader {
 public:
  explicit MapReader(const msgpack::object& map) : m_map(map) {}

  template <class T>
  void operator()(std::string_view key, T& out) {
    if (!m_error.empty()) return;
    const msgpack::object* value = find(key);
    if (value == nullptr || value->type == msgpack::type::NIL) return;
    if (auto error = get(*value, out); !error.empty()) m_error = fmt::format("{}: {}", key, error);
  }

  template <class T>
  static std::string get(const msgpack::object& value, T& out) {
    if constexpr (k_is_record<T>) {
      if (value.type != msgpack::type::MAP) return "expected a map";
      MapReader inner(value);
      fields(inner, out);
      return inner.m_error;
    } else if constexpr (std::is_same_v<T, Phase> || std::is_same_v<T, Status>) {
      if (value.type != msgpack::type::STR) return "expected a string";
      const std::string_view word(value.via.str.ptr, value.via.str.size);
      bool ok = false;
      if constexpr (std::is_same_v<T, Phase>) {
        ok = parse_phase(word, out);
      } else {
        ok = parse_status(word, out);
      }
      return ok ? std::string() : fmt::format("unknown word '{}'", word);
    } else if constexpr (k_is_record_vector<T>) {
      if (value.type != msgpack::type::ARRAY) return "expected an array";
      out.assign(value.via.array.size, {});
      for (std::uint32_t i = 0; i < value.via.array.size; ++i) {
        if (auto error = get(value.via.array.ptr[i], out[i]); !error.empty()) {
          return fmt::format("[{}]: {}", i, error);
        }
      }
      return {};
    } else {
      try {
        value.convert(out);
        return {};
      } catch (const std::exception&) {
        return "wrong type";
      }
    }
  }

  [[nodiscard]] const std::string& error() const { return m_error; }

  [[nodiscard]] const msgpack::object* find(std::string_view key) const {
    for (std::uint32_t i = 0; i < m_map.via.map.size; ++i) {
      const msgpack::object_kv& kv = m_map.via.map.ptr[i];
      if (kv.key.type == msgpack::type::STR &&
          std::string_view(kv.key.via.str.ptr, kv.key.via.str.size) == key) {
        return &kv.val;
      }
    }
    return nullptr;
  }

 private:
  const msgpack::object& m_map;
  std::string m_error;
};

struct TypeName {
  MessageType type;
  std::string_view name;
};
constexpr std::array<TypeName, 15> k_type_names = {{
    {MessageType::hello, "Hello"},
    {MessageType::welcome, "Welcome"},
    {MessageType::heartbeat, "Heartbeat"},
    {MessageType::work_request, "WorkRequest"},
    {MessageType::lease, "Lease"},
    {MessageType::test_result, "TestResult"},
    {MessageType::lease_done, "LeaseDone"},
    {MessageType::hand_back, "HandBack"},
    {MessageType::cancel, "Cancel"},
    {MessageType::shutdown, "Shutdown"},
    {MessageType::run_submit, "RunSubmit"},
    {MessageType::run_accepted, "RunAccepted"},
    {MessageType::result_stream, "ResultStream"},
    {MessageType::run_finished, "RunFinished"},
    {MessageType::error, "Error"},
}};

constexpr std::array<std::string_view, 9> k_error_words = {
    "usage", "io", "parse", "protocol", "worker", "collection", "incomplete", "interrupted",
    "internal"};

// Builds the variant alternative for a wire type number from its body map.
template <class T>
Result<Message> decode_body(const msgpack::object& body) {
  T message{};
  if (auto error = MapReader::get(body, message); !error.empty()) {
    return fail(ErrorCode::parse, fmt::format("bad {} body: {}", to_string(type_of(Message(T{}))),
                                              error));
  }
  // A result without a single phase says nothing about the test: no report could
  // show it. Dropped like any bad body, so the test stays pending (re-leased if lost).
  if constexpr (std::is_same_v<T, TestResultMsg> || std::is_same_v<T, ResultStream>) {
    if (message.result.phases.empty()) {
      return fail(ErrorCode::parse, fmt::format("bad {} body: result of test {} has no phases",
                                                to_string(type_of(Message(T{}))), message.result.index));
    }
  }
  return Message(std::move(message));
}

Result<Message> decode_message(MessageType type, const msgpack::object& body) {
  switch (type) {
    case MessageType::hello: return decode_body<Hello>(body);
    case MessageType::welcome: return decode_body<Welcome>(body);
    case MessageType::heartbeat: return decode_body<Heartbeat>(body);
    case MessageType::work_request: return decode_body<WorkRequest>(body);
    case MessageType::lease: return decode_body<Lease>(body);
    case MessageType::test_result: return decode_body<TestResultMsg>(body);
    case MessageType::lease_done: return decode_body<LeaseDone>(body);
    case MessageType::hand_back: return decode_body<HandBack>(body);
    case MessageType::cancel: return decode_body<Cancel>(body);
    case MessageType::shutdown: return decode_body<Shutdown>(body);
    case MessageType::run_submit: return decode_body<RunSubmit>(body);
    case MessageType::run_accepted: return decode_body<RunAccepted>(body);
    case MessageType::result_stream: return decode_body<ResultStream>(body);
    case MessageType::run_finished: return decode_body<RunFinished>(body);
    case MessageType::error: return decode_body<ErrorMsg>(body);
  }
  return fail(ErrorCode::protocol,
              fmt::format("unknown message type {}", static_cast<int>(type)));
}

}  // namespace

MessageType type_of(const Message& message) {
  // Variant alternatives are declared in MessageType order, numbers starting at 1.
  return static_cast<MessageType>(message.index() + 1);
}

std::string_view to_string(MessageType type) {
  for (const TypeName& entry : k_type_names) {
    if (entry.type == type) return entry.name;
  }
  return "Unknown";
}

std::string_view to_string(ErrorCode code) {
  return k_error_words[static_cast<std::size_t>(code)];
}

ErrorCode parse_error_code(std::string_view word) {
  for (std::size_t i = 0; i < k_error_words.size(); ++i) {
    if (k_error_words[i] == word) return static_cast<ErrorCode>(i);
  }
  return ErrorCode::internal;
}

std::string encode(const Message& message, int version) {
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> packer(buffer);
  packer.pack_map(4);
  packer.pack(std::string_view("p"));
  packer.pack(k_magic);
  packer.pack(std::string_view("v"));
  packer.pack(version);
  packer.pack(std::string_view("t"));
  packer.pack(static_cast<int>(type_of(message)));
  packer.pack(std::string_view("b"));
  std::visit([&](const auto& body) { MapWriter::put(packer, body); }, message);
  return std::string(buffer.data(), buffer.size());
}

Result<Envelope> decode(std::string_view frame) {
  // Limits scale with the frame so a few garbage bytes cannot claim a huge
  // array and make the unpacker allocate for it.
  const msgpack::unpack_limit limit(frame.size(), frame.size(), frame.size(), frame.size(),
                                    frame.size(), 64);
  msgpack::object_handle handle;
  try {
    std::size_t offset = 0;
    handle = msgpack::unpack(frame.data(), frame.size(), offset, nullptr, nullptr, limit);
    if (handle.get().type != msgpack::type::MAP) return fail(ErrorCode::parse, "not a drover frame");
    if (offset != frame.size()) {
      return fail(ErrorCode::parse, fmt::format("{} trailing bytes after the frame",
                                                frame.size() - offset));
    }
  } catch (const msgpack::insufficient_bytes&) {
    return fail(ErrorCode::parse, fmt::format("truncated frame ({} bytes)", frame.size()));
  } catch (const std::exception& e) {
    return fail(ErrorCode::parse, fmt::format("not a drover frame: {}", e.what()));
  }
  const msgpack::object& root = handle.get();
  if (root.type != msgpack::type::MAP) return fail(ErrorCode::parse, "not a drover frame");

  std::string magic;
  int version = 0;
  int type = 0;
  MapReader header(root);
  header("p", magic);
  header("v", version);
  header("t", type);
  if (!header.error().empty() || magic != k_magic) {
    return fail(ErrorCode::parse, "not a drover frame");
  }
  const msgpack::object* body = header.find("b");
  if (body == nullptr || body->type != msgpack::type::MAP) {
    return fail(ErrorCode::parse, "frame has no body map");
  }

  const auto message_type = static_cast<MessageType>(type);
  if (message_type != MessageType::hello &&
      (version < k_min_protocol_version || version > k_protocol_version)) {
    return fail(ErrorCode::protocol,
                fmt::format("peer speaks farm protocol {}, this drover speaks {} to {}", version,
                            k_min_protocol_version, k_protocol_version));
  }
  auto message = decode_message(message_type, *body);
  if (!message) return std::unexpected(message.error());
  return Envelope{version, message_type, std::move(*message)};
}

Result<int> negotiate(const Hello& hello) {
  const int high = std::min(hello.protocol_max, k_protocol_version);
  const int low = std::max(hello.protocol_min, k_min_protocol_version);
  if (high < low || hello.protocol_min > hello.protocol_max) {
    return fail(ErrorCode::protocol,
                fmt::format("peer speaks farm protocol {} to {}, this drover speaks {} to {}",
                            hello.protocol_min, hello.protocol_max, k_min_protocol_version,
                            k_protocol_version));
  }
  return high;
}

}  // namespace drover::common::farm
