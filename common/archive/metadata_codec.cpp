#include "common/archive/metadata_codec.h"

#include <nlohmann/json.hpp>

#include <array>
#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <limits>
#include <stdexcept>

namespace procsnap {

namespace {

using ordered_json = nlohmann::ordered_json; // writes members in a readable, stable order

// ---------------------------------------------------------------------------------------
// Encoding

std::string hexAddress(uint64_t value) {
  char buffer[2 + 16 + 1];
  std::snprintf(buffer, sizeof buffer, "0x%" PRIx64, value);
  return buffer;
}

std::string hexBytes(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::string hexBytes(const std::vector<std::byte>& bytes) {
  return hexBytes(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

// Strict UTF-8 (no overlong forms, surrogates or code points above U+10FFFF), the same rule
// nlohmann::json applies when it writes a string.
bool isValidUtf8(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t length = 0;
    uint32_t min = 0;
    uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) {
      length = 2, min = 0x80, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      length = 3, min = 0x800, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      length = 4, min = 0x10000, cp = c & 0x07;
    } else {
      return false;
    }
    if (n - i < length)
      return false;
    for (size_t k = 1; k < length; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80)
        return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += length;
  }
  return true;
}

// Text from the target (paths, command lines, names) is bytes; JSON strings are UTF-8.
ordered_json text(const std::string& s) {
  if (isValidUtf8(s))
    return s;
  return ordered_json{{"hex", hexBytes(s)}};
}

ordered_json encodeStats(const CaptureStats& stats) {
  ordered_json j;
  j["pause_seconds"] = stats.pause_seconds;
  j["phase_seconds"] = ordered_json::object();
  for (const auto& [name, seconds] : stats.phase_seconds)
    j["phase_seconds"][name] = seconds;
  j["bytes_copied"] = stats.bytes_copied;
  if (stats.bytes_recopied != 0)
    j["bytes_recopied"] = stats.bytes_recopied;
  j["bytes_stored"] = stats.bytes_stored;
  j["bytes_compressed"] = stats.bytes_compressed;
  j["bytes_skipped"] = ordered_json::object();
  for (const auto& [name, bytes] : stats.bytes_skipped)
    j["bytes_skipped"][name] = bytes;
  j["threads"] = stats.threads;
  j["chunks"] = stats.chunks;
  j["compressed_while_frozen"] = stats.compressed_while_frozen;
  return j;
}

ordered_json encodeModuleRecord(const ModuleRecord& m) {
  ordered_json j;
  j["path"] = text(m.path);
  j["build_id"] = m.build_id;
  j["build_id_memory"] = m.build_id_memory;
  j["file_size"] = m.file_size;
  j["load_address"] = hexAddress(m.load_address);
  j["source"] = text(m.source);
  j["embedded"] = m.embedded;
  j["deleted"] = m.deleted;
  return j;
}

ordered_json encodeProcess(const ProcessInfo& p) {
  ordered_json j;
  j["pid"] = p.pid;
  j["ppid"] = p.ppid;
  j["comm"] = text(p.comm);
  j["exe"] = text(p.exe);
  j["cwd"] = text(p.cwd);
  j["cmdline"] = ordered_json::array();
  for (const auto& arg : p.cmdline)
    j["cmdline"].push_back(text(arg));
  if (p.has_environ) {
    j["environ"] = ordered_json::array();
    for (const auto& var : p.environ)
      j["environ"].push_back(text(var));
  }
  j["status"] = ordered_json::array();
  for (const auto& [key, value] : p.status)
    j["status"].push_back(ordered_json::array({text(key), text(value)}));
  j["auxv"] = ordered_json::array();
  for (const auto& entry : p.auxv)
    j["auxv"].push_back(ordered_json::array({entry.type, hexAddress(entry.value)}));
  j["limits"] = text(p.limits);
  j["coredump_filter"] = p.coredump_filter;
  j["uid"] = p.uid;
  j["gid"] = p.gid;
  j["groups"] = p.groups;
  return j;
}

ordered_json encodeRegion(const RegionRecord& r) {
  const MapsEntry& m = r.smaps.map;
  ordered_json j;
  j["start"] = hexAddress(m.start);
  j["end"] = hexAddress(m.end);
  j["perms"] = m.perms.str();
  j["offset"] = m.offset;
  j["dev_major"] = m.dev_major;
  j["dev_minor"] = m.dev_minor;
  j["inode"] = m.inode;
  j["path"] = text(m.path);
  j["deleted"] = m.deleted;
  j["kind"] = std::string(toString(r.kind));
  j["smaps"] = ordered_json::array();
  for (const auto& [key, value] : r.smaps.fields)
    j["smaps"].push_back(ordered_json::array({text(key), value}));
  j["vm_flags"] = ordered_json::array();
  for (const auto& flag : r.smaps.vm_flags)
    j["vm_flags"].push_back(text(flag));
  j["pages"] = ordered_json::array();
  for (const auto& run : r.pages)
    j["pages"].push_back(ordered_json::array(
        {hexAddress(run.start), hexAddress(run.end), std::string(toString(run.state))}));
  j["note"] = text(r.note);
  return j;
}

ordered_json encodeThread(const ThreadRecord& t) {
  ordered_json j;
  j["tid"] = t.tid;
  j["name"] = text(t.name);
  j["state"] = text(t.state);
  j["pc"] = hexAddress(t.pc);
  j["sp"] = hexAddress(t.sp);
  j["register_sets"] = ordered_json::array();
  for (const auto& set : t.register_sets)
    j["register_sets"].push_back(
        ordered_json{{"note_type", set.note_type}, {"bytes", hexBytes(set.bytes)}});
  return j;
}

std::string dump(const ordered_json& j) {
  // Every string went through text(), so nothing invalid is left; replace is a last resort
  // that keeps dump() from throwing.
  return j.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
}

// ---------------------------------------------------------------------------------------
// Decoding. A pull parser reads the text straight into the domain types: no JSON tree is
// built, which makes decoding several times faster than nlohmann's DOM (opening an archive
// decodes its metadata, and a process can have thousands of regions). Helpers throw
// DecodeError, which never leaves this file: the public functions turn it into
// ErrorCode::Malformed.

struct DecodeError {
  std::string message;
};

// A region that breaks a rule only visible once all of it is read; the caller adds the path.
struct RegionError {
  std::string message;
};

// Nesting deeper than this is refused (the schema needs 5 levels); it bounds the recursion
// of skipValue() on hostile input.
constexpr int kMaxJsonDepth = 64;

class JsonCursor final {
public:
  explicit JsonCursor(std::string_view text)
      : begin_(text.data()), p_(text.data()), end_(text.data() + text.size()) {}

  // Throws with the path of the value being read: "regions[3].start: expected ...".
  [[noreturn]] void fail(std::string_view what) const {
    std::string path;
    for (const auto& segment : path_) {
      if (segment.is_index) {
        // append() rather than a chain of operator+: g++ 12 -O2 warns falsely (-Wrestrict).
        path.append("[").append(std::to_string(segment.index)).append("]");
      } else {
        if (!path.empty())
          path += ".";
        path += segment.key;
      }
    }
    if (path.empty())
      path = "document";
    path.append(": ").append(what);
    throw DecodeError{std::move(path)};
  }

  // Charges bytes of decoded records against the document's budget (kMaxDecodedDocumentBytes).
  void charge(uint64_t bytes) {
    if (bytes > budget_left_)
      fail("decoded records would take more than " +
           std::to_string(kMaxDecodedDocumentBytes >> 20) + " MiB (the limit per document)");
    budget_left_ -= bytes;
  }

  [[noreturn]] void syntax() const {
    throw DecodeError{"invalid json at byte " + std::to_string(p_ - begin_)};
  }

  char peek() {
    skipSpace();
    if (p_ == end_)
      syntax();
    return *p_;
  }

  // Consumes a null and returns true, or returns false and leaves the value.
  bool takeNull() {
    if (peek() != 'n')
      return false;
    literal("null");
    return true;
  }

  // Calls fn(key) for each member; fn must consume the member's value.
  template <typename Fn> void forMembers(Fn fn) {
    if (peek() != '{')
      fail("expected an object");
    ++p_;
    Scope scope(*this, false);
    for (bool first = true;; first = false) {
      if (peek() == '}') {
        ++p_;
        return;
      }
      if (!first) {
        if (*p_ != ',')
          syntax();
        ++p_;
      }
      if (peek() != '"')
        syntax();
      readStringInto(key_);
      if (peek() != ':')
        syntax();
      ++p_;
      path_.back().key = key_;
      fn(std::string_view(path_.back().key));
    }
  }

  // Calls fn(index) for each element; fn must consume the element. Returns the count.
  template <typename Fn> size_t forElements(Fn fn) {
    if (peek() != '[')
      fail("expected an array");
    ++p_;
    Scope scope(*this, true);
    for (size_t i = 0;; ++i) {
      if (peek() == ']') {
        ++p_;
        return i;
      }
      if (i != 0) {
        if (*p_ != ',')
          syntax();
        ++p_;
      }
      path_.back().index = i;
      fn(i);
    }
  }

  std::string readString() {
    if (peek() != '"')
      fail("expected a string");
    std::string out;
    readStringInto(out);
    charge(out.size());
    return out;
  }

  bool readBool() {
    const char c = peek();
    if (c == 't') {
      literal("true");
      return true;
    }
    if (c == 'f') {
      literal("false");
      return false;
    }
    fail("expected true or false");
  }

  // The text of a number token; integer says whether it has no fraction and no exponent.
  std::string_view numberToken(bool& integer) {
    const char c = peek();
    if (c != '-' && (c < '0' || c > '9'))
      return {};
    const char* start = p_;
    integer = true;
    if (*p_ == '-')
      ++p_;
    if (p_ == end_ || *p_ < '0' || *p_ > '9')
      syntax();
    if (*p_ == '0')
      ++p_;
    else
      digits();
    if (p_ != end_ && *p_ == '.') {
      integer = false;
      ++p_;
      digitsRequired();
    }
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
      integer = false;
      ++p_;
      if (p_ != end_ && (*p_ == '+' || *p_ == '-'))
        ++p_;
      digitsRequired();
    }
    return {start, static_cast<size_t>(p_ - start)};
  }

  uint64_t readU64() {
    bool integer = false;
    const std::string_view token = numberToken(integer);
    uint64_t value = 0;
    if (token.empty() || !integer || token[0] == '-' ||
        std::from_chars(token.data(), token.data() + token.size(), value).ec != std::errc())
      fail("expected a non-negative integer");
    return value;
  }

  int64_t readI64() {
    bool integer = false;
    const std::string_view token = numberToken(integer);
    int64_t value = 0;
    if (token.empty() || !integer ||
        std::from_chars(token.data(), token.data() + token.size(), value).ec != std::errc())
      fail("expected an integer");
    return value;
  }

  double readDouble() {
    bool integer = false;
    const std::string_view token = numberToken(integer);
    double value = 0;
    if (token.empty() ||
        std::from_chars(token.data(), token.data() + token.size(), value).ec != std::errc())
      fail("expected a number");
    return value;
  }

  bool atNumber() {
    const char c = peek();
    return c == '-' || (c >= '0' && c <= '9');
  }

  void skipValue() {
    const char c = peek();
    if (c == '{') {
      forMembers([&](std::string_view) { skipValue(); });
    } else if (c == '[') {
      forElements([&](size_t) { skipValue(); });
    } else if (c == '"') {
      readStringInto(scratch_);
    } else if (c == 't' || c == 'f') {
      readBool();
    } else if (c == 'n') {
      literal("null");
    } else {
      bool integer = false;
      if (numberToken(integer).empty())
        syntax();
    }
  }

  // After the top-level value: nothing but white space.
  void expectEnd() {
    skipSpace();
    if (p_ != end_)
      syntax();
  }

private:
  uint64_t budget_left_ = kMaxDecodedDocumentBytes;

  struct Segment {
    std::string key;
    size_t index = 0;
    bool is_index = false;
  };

  // Tracks the path for error messages and bounds the depth.
  class Scope final {
  public:
    Scope(JsonCursor& cursor, bool is_index) : cursor_(cursor) {
      if (cursor.path_.size() >= kMaxJsonDepth)
        cursor.fail("nested too deeply");
      cursor.path_.push_back(Segment{{}, 0, is_index});
    }
    ~Scope() { cursor_.path_.pop_back(); }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

  private:
    JsonCursor& cursor_;
  };

  void skipSpace() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t'))
      ++p_;
  }

  void literal(std::string_view word) {
    if (static_cast<size_t>(end_ - p_) < word.size() || std::string_view(p_, word.size()) != word)
      syntax();
    p_ += word.size();
  }

  void digits() {
    while (p_ != end_ && *p_ >= '0' && *p_ <= '9')
      ++p_;
  }

  void digitsRequired() {
    if (p_ == end_ || *p_ < '0' || *p_ > '9')
      syntax();
    digits();
  }

  unsigned hex4() {
    if (end_ - p_ < 4)
      syntax();
    unsigned value = 0;
    auto [end, ec] = std::from_chars(p_, p_ + 4, value, 16);
    if (ec != std::errc() || end != p_ + 4)
      syntax();
    p_ += 4;
    return value;
  }

  static void appendUtf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  // At an opening quote: reads the string, unescaped, into out.
  void readStringInto(std::string& out) {
    ++p_;
    out.clear();
    for (;;) {
      const char* run = p_;
      while (p_ != end_ && *p_ != '"' && *p_ != '\\' && static_cast<unsigned char>(*p_) >= 0x20)
        ++p_;
      out.append(run, p_);
      if (p_ == end_ || static_cast<unsigned char>(*p_) < 0x20)
        syntax();
      if (*p_ == '"') {
        ++p_;
        return;
      }
      ++p_; // backslash
      if (p_ == end_)
        syntax();
      const char escape = *p_++;
      switch (escape) {
      case '"':
      case '\\':
      case '/':
        out.push_back(escape);
        break;
      case 'b':
        out.push_back('\b');
        break;
      case 'f':
        out.push_back('\f');
        break;
      case 'n':
        out.push_back('\n');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'u': {
        uint32_t cp = hex4();
        if (cp >= 0xDC00 && cp <= 0xDFFF)
          syntax(); // a lone low surrogate
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u')
            syntax();
          p_ += 2;
          const uint32_t low = hex4();
          if (low < 0xDC00 || low > 0xDFFF)
            syntax();
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        }
        appendUtf8(out, cp);
        break;
      }
      default:
        syntax();
      }
    }
  }

  const char* begin_;
  const char* p_;
  const char* end_;
  std::vector<Segment> path_;
  std::string key_;
  std::string scratch_;
};

// Field readers. Each consumes one value; null leaves the target at its default.

uint64_t readU64(JsonCursor& c) {
  return c.readU64();
}

uint32_t readU32(JsonCursor& c) {
  const uint64_t value = c.readU64();
  if (value > std::numeric_limits<uint32_t>::max())
    c.fail("integer out of range for 32 bits");
  return static_cast<uint32_t>(value);
}

int32_t readI32(JsonCursor& c) {
  const int64_t value = c.readI64();
  if (value < std::numeric_limits<int32_t>::min() || value > std::numeric_limits<int32_t>::max())
    c.fail("integer out of range for 32 bits");
  return static_cast<int32_t>(value);
}

// Addresses are written as "0x…" strings; a plain JSON number is accepted too.
uint64_t readAddress(JsonCursor& c) {
  if (c.atNumber())
    return c.readU64();
  if (c.peek() != '"')
    c.fail("expected an address (\"0x...\" string)");
  const std::string s = c.readString();
  uint64_t value = 0;
  if (s.size() < 3 || s.size() > 18 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') ||
      std::from_chars(s.data() + 2, s.data() + s.size(), value, 16).ptr != s.data() + s.size())
    c.fail("expected an address (\"0x...\" string)");
  return value;
}

std::string fromHex(JsonCursor& c, std::string_view hex) {
  if (hex.size() % 2 != 0)
    c.fail("hex string has an odd length");
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(hex.data() + 2 * i, hex.data() + 2 * i + 2, value, 16);
    if (ec != std::errc() || end != hex.data() + 2 * i + 2)
      c.fail("invalid hex digits");
    out[i] = static_cast<char>(value);
  }
  return out;
}

// A string, or {"hex": "…"} for bytes that are not UTF-8.
std::string readText(JsonCursor& c) {
  const char first = c.peek();
  if (first == '"')
    return c.readString();
  if (first != '{')
    c.fail("expected a string");
  std::string out;
  bool found = false;
  c.forMembers([&](std::string_view key) {
    if (key == "hex" && c.peek() == '"') {
      out = fromHex(c, c.readString());
      found = true;
    } else {
      c.skipValue();
    }
  });
  if (!found)
    c.fail("expected a string");
  return out;
}

std::vector<std::byte> readBytes(JsonCursor& c) {
  if (c.peek() != '"')
    c.fail("expected a hex string");
  const std::string raw = fromHex(c, c.readString());
  c.charge(raw.size());
  std::vector<std::byte> out(raw.size());
  if (!raw.empty()) // memcpy must not get the null data() of an empty vector
    std::memcpy(out.data(), raw.data(), raw.size());
  return out;
}

// Reads a value into out unless it is null.
template <typename T, typename Read> void field(JsonCursor& c, T& out, Read read) {
  if (!c.takeNull())
    out = read(c);
}

void field(JsonCursor& c, uint64_t& out) {
  field(c, out, readU64);
}
void field(JsonCursor& c, uint32_t& out) {
  field(c, out, readU32);
}
void field(JsonCursor& c, int32_t& out) {
  field(c, out, readI32);
}
void field(JsonCursor& c, std::string& out) {
  field(c, out, readText);
}
void field(JsonCursor& c, bool& out) {
  field(c, out, [](JsonCursor& cc) { return cc.readBool(); });
}
void field(JsonCursor& c, double& out) {
  field(c, out, [](JsonCursor& cc) { return cc.readDouble(); });
}

// A fixed-size array (a pair, a triple): fn(index) reads each element.
template <typename Fn> void tuple(JsonCursor& c, size_t size, Fn fn) {
  const size_t count = c.forElements([&](size_t i) {
    if (i >= size)
      c.fail("expected an array of " + std::to_string(size) + " elements");
    fn(i);
  });
  if (count != size)
    c.fail("expected an array of " + std::to_string(size) + " elements");
}

// A list: fn(index) reads each element; null reads as empty.
template <typename Fn> void list(JsonCursor& c, Fn fn) {
  if (!c.takeNull())
    c.forElements(fn);
}

// Appends an element to a decoded vector, charged to the document's budget. A vector may
// reserve up to twice what it holds, so each element is charged twice its size.
template <typename Vector> auto& grow(JsonCursor& c, Vector& v) {
  c.charge(2 * sizeof(typename Vector::value_type));
  return v.emplace_back();
}

// Fails when a list would hold more than limit elements.
void checkCount(JsonCursor& c, size_t index, uint64_t limit, std::string_view what) {
  if (index >= limit)
    c.fail("more than " + std::to_string(limit) + " " + std::string(what) + " (the limit)");
}

// An object: fn(key) reads each member; null reads as empty.
template <typename Fn> void object(JsonCursor& c, Fn fn) {
  if (!c.takeNull())
    c.forMembers(fn);
}

void decodeStatsMember(JsonCursor& c, std::string_view key, CaptureStats& s) {
  if (key == "pause_seconds")
    field(c, s.pause_seconds);
  else if (key == "phase_seconds")
    object(c, [&](std::string_view name) { field(c, s.phase_seconds[std::string(name)]); });
  else if (key == "bytes_copied")
    field(c, s.bytes_copied);
  else if (key == "bytes_recopied")
    field(c, s.bytes_recopied);
  else if (key == "bytes_stored")
    field(c, s.bytes_stored);
  else if (key == "bytes_compressed")
    field(c, s.bytes_compressed);
  else if (key == "bytes_skipped")
    object(c, [&](std::string_view name) { field(c, s.bytes_skipped[std::string(name)]); });
  else if (key == "threads")
    field(c, s.threads);
  else if (key == "chunks")
    field(c, s.chunks);
  else if (key == "compressed_while_frozen")
    field(c, s.compressed_while_frozen);
  else
    c.skipValue();
}

CaptureStats decodeStats(JsonCursor& c) {
  CaptureStats s;
  object(c, [&](std::string_view key) { decodeStatsMember(c, key, s); });
  return s;
}

ModuleRecord decodeModuleRecord(JsonCursor& c) {
  ModuleRecord m;
  object(c, [&](std::string_view key) {
    if (key == "path")
      field(c, m.path);
    else if (key == "build_id")
      field(c, m.build_id);
    else if (key == "build_id_memory")
      field(c, m.build_id_memory);
    else if (key == "file_size")
      field(c, m.file_size);
    else if (key == "load_address")
      field(c, m.load_address, readAddress);
    else if (key == "source")
      field(c, m.source);
    else if (key == "embedded")
      field(c, m.embedded);
    else if (key == "deleted")
      field(c, m.deleted);
    else
      c.skipValue();
  });
  return m;
}

template <size_t N> void readIds(JsonCursor& c, std::array<uint32_t, N>& out) {
  if (!c.takeNull())
    tuple(c, N, [&](size_t i) { out[i] = readU32(c); });
}

ProcessInfo decodeProcess(JsonCursor& c) {
  ProcessInfo p;
  object(c, [&](std::string_view key) {
    if (key == "pid")
      field(c, p.pid);
    else if (key == "ppid")
      field(c, p.ppid);
    else if (key == "comm")
      field(c, p.comm);
    else if (key == "exe")
      field(c, p.exe);
    else if (key == "cwd")
      field(c, p.cwd);
    else if (key == "cmdline")
      list(c, [&](size_t) { grow(c, p.cmdline) = readText(c); });
    else if (key == "environ") {
      p.has_environ = !c.takeNull();
      if (p.has_environ)
        c.forElements([&](size_t) { grow(c, p.environ) = readText(c); });
    } else if (key == "status")
      list(c, [&](size_t) {
        auto& entry = grow(c, p.status);
        tuple(c, 2, [&](size_t i) { (i == 0 ? entry.first : entry.second) = readText(c); });
      });
    else if (key == "auxv")
      list(c, [&](size_t) {
        auto& entry = grow(c, p.auxv);
        tuple(c, 2, [&](size_t i) {
          if (i == 0)
            entry.type = c.readU64();
          else
            entry.value = readAddress(c);
        });
      });
    else if (key == "limits")
      field(c, p.limits);
    else if (key == "coredump_filter")
      field(c, p.coredump_filter);
    else if (key == "uid")
      readIds(c, p.uid);
    else if (key == "gid")
      readIds(c, p.gid);
    else if (key == "groups")
      list(c, [&](size_t) { grow(c, p.groups) = readU32(c); });
    else
      c.skipValue();
  });
  return p;
}

HostInfo decodeHost(JsonCursor& c) {
  HostInfo h;
  object(c, [&](std::string_view key) {
    if (key == "hostname")
      field(c, h.hostname);
    else if (key == "kernel_release")
      field(c, h.kernel_release);
    else if (key == "machine")
      field(c, h.machine);
    else if (key == "page_size")
      field(c, h.page_size);
    else if (key == "boot_id")
      field(c, h.boot_id);
    else
      c.skipValue();
  });
  return h;
}

Permissions readPerms(JsonCursor& c) {
  const std::string s = readText(c);
  if (s.size() != 4 || (s[0] != 'r' && s[0] != '-') || (s[1] != 'w' && s[1] != '-') ||
      (s[2] != 'x' && s[2] != '-') || (s[3] != 's' && s[3] != 'p'))
    c.fail("expected permissions like \"r-xp\"");
  Permissions perms;
  perms.read = s[0] == 'r';
  perms.write = s[1] == 'w';
  perms.execute = s[2] == 'x';
  perms.shared = s[3] == 's';
  return perms;
}

RegionRecord decodeRegion(JsonCursor& c) {
  RegionRecord r;
  MapsEntry& m = r.smaps.map;
  bool has_start = false;
  bool has_end = false;
  c.forMembers([&](std::string_view key) {
    if (key == "start") {
      m.start = readAddress(c);
      has_start = true;
    } else if (key == "end") {
      m.end = readAddress(c);
      has_end = true;
    } else if (key == "perms") {
      field(c, m.perms, readPerms);
    } else if (key == "offset") {
      field(c, m.offset);
    } else if (key == "dev_major") {
      field(c, m.dev_major);
    } else if (key == "dev_minor") {
      field(c, m.dev_minor);
    } else if (key == "inode") {
      field(c, m.inode);
    } else if (key == "path") {
      field(c, m.path);
    } else if (key == "deleted") {
      field(c, m.deleted);
    } else if (key == "kind") {
      if (c.takeNull())
        return;
      const std::string name = readText(c);
      auto parsed = regionKindFromString(name);
      if (!parsed)
        c.fail("unknown region kind \"" + name + "\"");
      r.kind = *parsed;
    } else if (key == "smaps") {
      list(c, [&](size_t) {
        auto& entry = grow(c, r.smaps.fields);
        tuple(c, 2, [&](size_t i) {
          if (i == 0)
            entry.first = readText(c);
          else
            entry.second = c.readU64();
        });
      });
    } else if (key == "vm_flags") {
      list(c, [&](size_t) { grow(c, r.smaps.vm_flags) = readText(c); });
    } else if (key == "pages") {
      list(c, [&](size_t) {
        PageRun& run = grow(c, r.pages);
        tuple(c, 3, [&](size_t i) {
          if (i == 0) {
            run.start = readAddress(c);
          } else if (i == 1) {
            run.end = readAddress(c);
          } else {
            const std::string state = readText(c);
            auto parsed = pageStateFromString(state);
            if (!parsed)
              c.fail("unknown page state \"" + state + "\"");
            run.state = *parsed;
          }
        });
      });
    } else if (key == "note") {
      field(c, r.note);
    } else {
      c.skipValue();
    }
  });
  // Checked once the whole region is read: members may come in any order.
  if (!has_start || !has_end)
    throw RegionError{"a region needs start and end"};
  if (m.start >= m.end)
    throw RegionError{"region start " + hexAddress(m.start) + " is not below end " +
                      hexAddress(m.end)};
  uint64_t previous_end = m.start;
  for (const auto& run : r.pages) {
    if (run.start >= run.end || run.start < previous_end || run.end > m.end)
      throw RegionError{"page run " + hexAddress(run.start) + "-" + hexAddress(run.end) +
                        " is empty, out of order or outside its region"};
    previous_end = run.end;
  }
  return r;
}

ThreadRecord decodeThread(JsonCursor& c) {
  ThreadRecord t;
  object(c, [&](std::string_view key) {
    if (key == "tid")
      field(c, t.tid);
    else if (key == "name")
      field(c, t.name);
    else if (key == "state")
      field(c, t.state);
    else if (key == "pc")
      field(c, t.pc, readAddress);
    else if (key == "sp")
      field(c, t.sp, readAddress);
    else if (key == "register_sets")
      list(c, [&](size_t) {
        RegisterSet& set = grow(c, t.register_sets);
        object(c, [&](std::string_view member) {
          if (member == "note_type")
            field(c, set.note_type);
          else if (member == "bytes")
            field(c, set.bytes, readBytes);
          else
            c.skipValue();
        });
      });
    else
      c.skipValue();
  });
  return t;
}

template <typename Fn> auto decodeGuarded(std::string_view what, Fn fn) -> Result<decltype(fn())> {
  try {
    return fn();
  } catch (const DecodeError& e) {
    return Error::make(ErrorCode::Malformed, std::string(what) + ": " + e.message);
  } catch (const std::exception& e) { // std::bad_alloc, std::length_error
    return Error::make(ErrorCode::Malformed, std::string(what) + ": " + e.what());
  }
}

} // namespace

std::string encodeMetadata(const SnapshotMetadata& metadata) {
  ordered_json j;
  j["metadata_version"] = kMetadataVersion;
  j["tool_version"] = text(metadata.tool_version);
  j["capture_time"] = text(metadata.capture_time);
  j["partial"] = metadata.partial;
  j["partial_reason"] = text(metadata.partial_reason);
  j["process"] = encodeProcess(metadata.process);
  j["host"] = ordered_json{{"hostname", text(metadata.host.hostname)},
                           {"kernel_release", text(metadata.host.kernel_release)},
                           {"machine", text(metadata.host.machine)},
                           {"page_size", metadata.host.page_size},
                           {"boot_id", text(metadata.host.boot_id)}};
  j["regions"] = ordered_json::array();
  for (const auto& region : metadata.regions)
    j["regions"].push_back(encodeRegion(region));
  j["threads"] = ordered_json::array();
  for (const auto& thread : metadata.threads)
    j["threads"].push_back(encodeThread(thread));
  j["modules"] = ordered_json::array();
  for (const auto& module : metadata.modules)
    j["modules"].push_back(encodeModuleRecord(module));
  j["stats"] = encodeStats(metadata.stats);
  j["warnings"] = ordered_json::array();
  for (const auto& warning : metadata.warnings)
    j["warnings"].push_back(text(warning));
  return dump(j);
}

Result<SnapshotMetadata> decodeMetadata(std::string_view document) {
  return decodeGuarded("metadata", [&] {
    JsonCursor c(document);
    SnapshotMetadata m;
    c.forMembers([&](std::string_view key) {
      if (key == "metadata_version") {
        uint64_t version = 0;
        field(c, version);
        if (version > kMetadataVersion)
          c.fail("version " + std::to_string(version) + " is newer than this build (" +
                 std::to_string(kMetadataVersion) + ")");
      } else if (key == "tool_version") {
        field(c, m.tool_version);
      } else if (key == "capture_time") {
        field(c, m.capture_time);
      } else if (key == "partial") {
        field(c, m.partial);
      } else if (key == "partial_reason") {
        field(c, m.partial_reason);
      } else if (key == "process") {
        m.process = decodeProcess(c);
      } else if (key == "host") {
        m.host = decodeHost(c);
      } else if (key == "regions") {
        list(c, [&](size_t index) {
          checkCount(c, index, kMaxRegions, "regions");
          c.charge(2 * sizeof(RegionRecord));
          RegionRecord region;
          try {
            region = decodeRegion(c);
          } catch (const RegionError& e) {
            c.fail(e.message);
          }
          if (!m.regions.empty() && region.smaps.map.start < m.regions.back().smaps.map.end)
            c.fail("region at " + hexAddress(region.smaps.map.start) +
                   " overlaps or precedes the previous region");
          m.regions.push_back(std::move(region));
        });
      } else if (key == "threads") {
        list(c, [&](size_t index) {
          checkCount(c, index, kMaxThreads, "threads");
          grow(c, m.threads) = decodeThread(c);
        });
      } else if (key == "modules") {
        list(c, [&](size_t index) {
          checkCount(c, index, kMaxModules, "modules");
          grow(c, m.modules) = decodeModuleRecord(c);
        });
      } else if (key == "stats") {
        m.stats = decodeStats(c);
      } else if (key == "warnings") {
        list(c, [&](size_t) { grow(c, m.warnings) = readText(c); });
      } else {
        c.skipValue();
      }
    });
    c.expectEnd();
    return m;
  });
}

std::string encodeCaptureStats(const CaptureStats& stats) {
  return dump(encodeStats(stats));
}

Result<CaptureStats> decodeCaptureStats(std::string_view document) {
  return decodeGuarded("stats", [&] {
    JsonCursor c(document);
    CaptureStats stats = decodeStats(c);
    c.expectEnd();
    return stats;
  });
}

std::string encodeStatsBlock(const StatsBlock& block) {
  ordered_json j = encodeStats(block.stats);
  j["partial"] = block.partial;
  j["partial_reason"] = text(block.partial_reason);
  return dump(j);
}

Result<StatsBlock> decodeStatsBlock(std::string_view document) {
  return decodeGuarded("stats", [&] {
    JsonCursor c(document);
    StatsBlock block;
    c.forMembers([&](std::string_view key) {
      if (key == "partial")
        field(c, block.partial);
      else if (key == "partial_reason")
        field(c, block.partial_reason);
      else
        decodeStatsMember(c, key, block.stats);
    });
    c.expectEnd();
    return block;
  });
}

std::string encodeModuleHead(const ModuleBlockHead& head) {
  ordered_json j;
  j["record"] = encodeModuleRecord(head.record);
  j["file_size"] = head.file_size; // the sketch's: the extent its pieces lie in
  j["pieces"] = ordered_json::array();
  for (const auto& [offset, length] : head.pieces)
    j["pieces"].push_back(ordered_json::array({offset, length}));
  return dump(j);
}

Result<ModuleBlockHead> decodeModuleHead(std::string_view document) {
  return decodeGuarded("module", [&] {
    JsonCursor c(document);
    ModuleBlockHead head;
    c.forMembers([&](std::string_view key) {
      if (key == "record") {
        head.record = decodeModuleRecord(c);
      } else if (key == "file_size") {
        field(c, head.file_size);
      } else if (key == "pieces") {
        list(c, [&](size_t index) {
          checkCount(c, index, kMaxModulePieces, "pieces");
          auto& piece = grow(c, head.pieces);
          tuple(c, 2, [&](size_t i) { (i == 0 ? piece.first : piece.second) = c.readU64(); });
        });
      } else {
        c.skipValue();
      }
    });
    c.expectEnd();
    // Checked once the whole head is read: members may come in any order.
    uint64_t previous_end = 0;
    for (const auto& [offset, length] : head.pieces) {
      if (offset < previous_end || length > head.file_size || offset > head.file_size - length)
        throw DecodeError{"piece at offset " + std::to_string(offset) +
                          " overlaps the previous one or lies outside the file"};
      previous_end = offset + length;
    }
    return head;
  });
}

} // namespace procsnap
