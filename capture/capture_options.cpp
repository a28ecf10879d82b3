#include "capture/capture_options.h"

#include "capture/redactor.h"

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <getopt.h>
#include <limits>
#include <memory>
#include <string>

namespace procsnap {
namespace {

// Long-only options get values above the char range.
enum LongOnly : int {
  kForce = 256,
  kAll,
  kFilter,
  kExclude,
  kEnviron,
  kEmbedBinaries,
  kRedact,
  kRedactFile,
  kLevel,
  kMaxBuffer,
  kCow,
  kPrecopy,
  kStats,
  kJson,
  kQuiet,
  kHelp,
  kVersion,
};

const option kLongOptions[] = {
    {"output", required_argument, nullptr, 'o'},
    {"force", no_argument, nullptr, kForce},
    {"all", no_argument, nullptr, kAll},
    {"filter", required_argument, nullptr, kFilter},
    {"exclude", required_argument, nullptr, kExclude},
    {"environ", no_argument, nullptr, kEnviron},
    {"embed-binaries", no_argument, nullptr, kEmbedBinaries},
    {"redact", required_argument, nullptr, kRedact},
    {"redact-file", required_argument, nullptr, kRedactFile},
    {"jobs", required_argument, nullptr, 'j'},
    {"level", required_argument, nullptr, kLevel},
    {"max-buffer", required_argument, nullptr, kMaxBuffer},
    {"cow", no_argument, nullptr, kCow},
    {"precopy", no_argument, nullptr, kPrecopy},
    {"stats", no_argument, nullptr, kStats},
    {"json", no_argument, nullptr, kJson},
    {"quiet", no_argument, nullptr, kQuiet},
    {"help", no_argument, nullptr, kHelp},
    {"version", no_argument, nullptr, kVersion},
    {nullptr, 0, nullptr, 0},
};

// Leading ':' makes getopt_long report a missing argument as ':' rather than '?', and
// print nothing itself.
constexpr const char* kShortOptions = ":o:j:qh";

Error usageError(std::string message) {
  return Error::make(ErrorCode::InvalidArgument, std::move(message));
}

std::string kindNames() {
  std::string names;
  for (int i = 0; i < kRegionKindCount; ++i) {
    if (!names.empty())
      names += ", ";
    names += toString(static_cast<RegionKind>(i));
  }
  return names;
}

Result<RegionKind> parseKind(std::string_view name) {
  if (auto kind = regionKindFromString(name))
    return *kind;
  return usageError("unknown region kind '" + std::string(name) + "' (known: " + kindNames() + ")");
}

// Breaks a comma-separated list into lines of at most width columns, the first line starting
// at column first_column, continuation lines indented by two.
std::string wrapped(const std::string& list, size_t first_column, size_t width) {
  std::string text;
  size_t column = first_column;
  size_t begin = 0;
  while (begin < list.size()) {
    size_t end = list.find(", ", begin);
    end = end == std::string::npos ? list.size() : end + 2;
    std::string item = list.substr(begin, end - begin);
    if (column + item.size() > width && column > 2) {
      while (!text.empty() && text.back() == ' ')
        text.pop_back();
      text += "\n  ";
      column = 2;
    }
    text += item;
    column += item.size();
    begin = end;
  }
  return text;
}

template <typename T> std::optional<T> parseInteger(std::string_view text) {
  T value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty())
    return std::nullopt;
  return value;
}

Result<pid_t> parsePid(std::string_view text) {
  auto value = parseInteger<int64_t>(text);
  // PIDs are positive and below PID_MAX_LIMIT (4194304 on 64-bit); anything else is a typo.
  if (!value || *value <= 0 || *value > (1 << 22))
    return usageError("invalid PID '" + std::string(text) + "'");
  return static_cast<pid_t>(*value);
}

// A --redact-file is a short list of secrets, never more than this.
constexpr size_t kMaxPatternFileSize = 1u << 20;

// One pattern per line ("\n" ends a line and is not part of the pattern; empty lines are
// skipped), so secrets need not appear on the command line, where ps shows them.
Result<std::vector<std::string>> readPatternFile(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file)
    return usageError("cannot read --redact-file " + path + ": " + std::strerror(errno));
  std::string text(kMaxPatternFileSize + 1, '\0');
  const size_t n = std::fread(text.data(), 1, text.size(), file.get());
  if (n > kMaxPatternFileSize)
    return usageError("--redact-file " + path + " is larger than " +
                      std::to_string(kMaxPatternFileSize) + " bytes");
  text.resize(n);
  std::vector<std::string> patterns;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos)
      end = text.size();
    if (end > begin)
      patterns.push_back(text.substr(begin, end - begin));
    begin = end + 1;
  }
  if (patterns.empty())
    return usageError("--redact-file " + path + " holds no pattern");
  return patterns;
}

// How to name the option getopt_long complained about: optopt is the short option character,
// a long-only option's value, or 0 for an unknown long option (then only argv shows it).
std::string optionName(int opt, const char* arg) {
  const std::string_view text = arg ? arg : "";
  if (text.starts_with("--"))
    return std::string(text.substr(0, text.find('=')));
  if (opt > 0 && opt < 256)
    return std::string("-") + static_cast<char>(opt);
  for (const option* o = kLongOptions; o->name; ++o)
    if (o->val == opt)
      return std::string("--") + o->name;
  return text.empty() ? std::string("?") : std::string(text);
}

} // namespace

Result<uint64_t> parseByteSize(std::string_view text) {
  std::string_view digits = text;
  size_t end = 0;
  while (end < digits.size() && digits[end] >= '0' && digits[end] <= '9')
    ++end;
  std::string_view suffix = digits.substr(end);
  digits = digits.substr(0, end);
  auto bad = [&] { return usageError("invalid size '" + std::string(text) + "'"); };
  auto number = parseInteger<uint64_t>(digits);
  if (!number)
    return bad();
  // Accept "K", "KB", "KiB" (and lowercase) as the same binary multiple.
  if (suffix.ends_with("iB") || suffix.ends_with("ib"))
    suffix.remove_suffix(2);
  else if (suffix.size() == 2 && (suffix.back() == 'B' || suffix.back() == 'b'))
    suffix.remove_suffix(1);
  unsigned shift = 0;
  if (suffix.empty() || suffix == "B" || suffix == "b")
    shift = 0;
  else if (suffix == "K" || suffix == "k")
    shift = 10;
  else if (suffix == "M" || suffix == "m")
    shift = 20;
  else if (suffix == "G" || suffix == "g")
    shift = 30;
  else if (suffix == "T" || suffix == "t")
    shift = 40;
  else
    return bad();
  if (shift != 0 && *number > (std::numeric_limits<uint64_t>::max() >> shift))
    return usageError("size '" + std::string(text) + "' is too large");
  return *number << shift;
}

Result<CaptureOptions> parseCaptureOptions(std::span<const std::string> args) {
  // getopt_long permutes argv and wants mutable strings: give it copies.
  std::vector<std::string> storage(args.begin(), args.end());
  std::vector<char*> argv;
  static char program[] = "procsnap-capture";
  argv.push_back(program);
  for (auto& arg : storage)
    argv.push_back(arg.data());
  argv.push_back(nullptr);
  const int argc = static_cast<int>(argv.size() - 1);

  CaptureOptions options;
  optind = 0; // 0 (not 1) makes glibc fully reinitialise, so parsing can run more than once
  opterr = 0;
  for (;;) {
    const int c = getopt_long(argc, argv.data(), kShortOptions, kLongOptions, nullptr);
    if (c == -1)
      break;
    const std::string_view value = optarg ? optarg : "";
    switch (c) {
    case 'o':
      if (value.empty())
        return usageError("--output needs a file name or '-'");
      options.output = std::string(value);
      break;
    case kForce:
      options.force = true;
      break;
    case kAll:
      options.all = true;
      break;
    case kFilter: {
      std::string_view rest = value;
      while (true) {
        const size_t comma = rest.find(',');
        auto kind = parseKind(rest.substr(0, comma));
        if (!kind)
          return std::move(kind).takeError();
        options.only_kinds.push_back(*kind);
        if (comma == std::string_view::npos)
          break;
        rest.remove_prefix(comma + 1);
      }
      break;
    }
    case kExclude:
      if (auto kind = regionKindFromString(value)) {
        options.exclude_kinds.push_back(*kind);
      } else if (value.find_first_of("/*?[") != std::string_view::npos) {
        // A path: a substring of mapped file paths, or an fnmatch glob (capture_policy.h).
        options.exclude_paths.emplace_back(value);
      } else {
        return usageError("--exclude takes a region kind, a path or a glob, not '" +
                          std::string(value) + "' (kinds: " + kindNames() + ")");
      }
      break;
    case kEnviron:
      options.include_environ = true;
      break;
    case kEmbedBinaries:
      options.embed_binaries = true;
      break;
    case kRedact:
      if (value.empty())
        return usageError("--redact needs a non-empty pattern");
      options.redact_patterns.emplace_back(value);
      break;
    case kRedactFile: {
      auto patterns = readPatternFile(std::string(value));
      if (!patterns)
        return std::move(patterns).takeError();
      for (std::string& pattern : *patterns)
        options.redact_patterns.push_back(std::move(pattern));
      break;
    }
    case 'j': {
      auto jobs = parseInteger<unsigned>(value);
      if (!jobs || *jobs == 0 || *jobs > kMaxJobs)
        return usageError("--jobs takes a number from 1 to " + std::to_string(kMaxJobs) +
                          ", not '" + std::string(value) + "'");
      options.jobs = *jobs;
      break;
    }
    case kLevel: {
      auto level = parseInteger<int>(value);
      if (!level || *level < kMinCompressionLevel || *level > kMaxCompressionLevel)
        return usageError("--level takes a number from " + std::to_string(kMinCompressionLevel) +
                          " to " + std::to_string(kMaxCompressionLevel) + ", not '" +
                          std::string(value) + "'");
      options.level = *level;
      break;
    }
    case kMaxBuffer: {
      auto size = parseByteSize(value);
      if (!size)
        return usageError("--max-buffer: " + size.error().message);
      options.max_buffer = *size;
      break;
    }
    case kStats:
      options.stats = true;
      break;
    case kCow:
      options.cow = true;
      break;
    case kPrecopy:
      options.precopy = true;
      break;
    case kJson:
      options.json = true;
      break;
    case 'q':
    case kQuiet:
      options.quiet = true;
      break;
    case 'h':
    case kHelp:
      options.help = true;
      return options;
    case kVersion:
      options.version = true;
      return options;
    case ':':
      return usageError("option " + optionName(optopt, argv[optind - 1]) + " needs a value");
    default: // '?'
      if (optopt != 0 && optopt >= 256)
        return usageError("option " + optionName(optopt, argv[optind - 1]) +
                          " does not take a value");
      return usageError("unknown option " + optionName(optopt, argv[optind - 1]));
    }
  }

  if (options.redact_patterns.size() > kMaxRedactPatterns)
    return usageError("at most " + std::to_string(kMaxRedactPatterns) + " --redact patterns, not " +
                      std::to_string(options.redact_patterns.size()));
  for (size_t i = 0; i < options.redact_patterns.size(); ++i)
    if (options.redact_patterns[i].size() > kMaxRedactPatternSize)
      // The pattern itself is a secret: name it by its position, never print it.
      return usageError("--redact pattern " + std::to_string(i) + " is longer than " +
                        std::to_string(kMaxRedactPatternSize) + " bytes");

  if (options.cow && options.precopy)
    return usageError("--cow and --precopy are two ways to shorten the pause: choose one");
  // The redactor sees chunks in the order they are copied, and --precopy copies some again.
  if (options.precopy && !options.redact_patterns.empty())
    return usageError("--precopy cannot be combined with --redact or --redact-file");

  if (optind >= argc)
    return usageError("missing PID");
  auto pid = parsePid(argv[optind]);
  if (!pid)
    return std::move(pid).takeError();
  options.pid = *pid;
  if (optind + 1 < argc)
    return usageError("unexpected argument '" + std::string(argv[optind + 1]) + "'");
  return options;
}

uint64_t defaultMaxBuffer(std::string_view meminfo_text) {
  constexpr std::string_view kKey = "MemAvailable:";
  const size_t at = meminfo_text.find(kKey);
  if (at == std::string_view::npos)
    return kFallbackMaxBuffer;
  std::string_view rest = meminfo_text.substr(at + kKey.size());
  while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t'))
    rest.remove_prefix(1);
  size_t digits = 0;
  while (digits < rest.size() && rest[digits] >= '0' && rest[digits] <= '9')
    ++digits;
  auto kib = parseInteger<uint64_t>(rest.substr(0, digits));
  if (!kib || *kib > (std::numeric_limits<uint64_t>::max() >> 12))
    return kFallbackMaxBuffer;
  // A quarter: the capture holds at most this much uncompressed, plus compressed output.
  const uint64_t quarter = (*kib << 10) / 4;
  return quarter < kMinDefaultMaxBuffer ? kMinDefaultMaxBuffer : quarter;
}

std::string captureUsage(std::string_view program) {
  std::string text = "Usage: " + std::string(program) + R"( [OPTION]... PID
Capture the memory, threads and modules of process PID into a .psnap archive.
The target is frozen only while its memory is copied; compression happens after.

Output:
  -o, --output FILE     write to FILE; '-' streams to standard output (not a terminal)
                        (default: COMM.PID.YYYYMMDDTHHMMSSZ.psnap in the current directory)
      --force           overwrite FILE when it exists (a regular file only)

What to capture (by default what a kernel core dump keeps, per coredump_filter, plus
every private file mapping; never MADV_DONTDUMP regions, untouched or all-zero pages):
      --all             ignore coredump_filter and MADV_DONTDUMP: every readable page
      --filter KINDS    capture only these region kinds (comma-separated)
      --exclude KIND|PATTERN
                        skip a region kind, or mappings whose path contains PATTERN
                        (a glob when it has *?[; PATTERN must hold one of /*?[);
                        repeatable
      --environ         record the environment (may hold secrets)
      --embed-binaries  store every mapped ELF file whole (deduplicated by build-id)
      --redact PATTERN  overwrite every occurrence of the literal byte string PATTERN with
                        '*' in memory, modules and metadata before anything is written;
                        the archive keeps a manifest (where, length, salted hash), never
                        PATTERN; repeatable (1 to 4096 bytes, at most 64 patterns)
      --redact-file FILE
                        the same for each line of FILE (keeps secrets out of ps)

Resources:
  -j, --jobs N          compression threads (default: one per CPU)
      --level N         zstd level )" +
                     std::to_string(kMinCompressionLevel) + "-" +
                     std::to_string(kMaxCompressionLevel) + R"( (default: 3)
      --max-buffer SIZE uncompressed bytes held while the target is frozen, with K, M, G
                        suffixes; beyond it chunks are compressed before thawing
                        (default: a quarter of MemAvailable)

Pause:
      --cow             thaw the target right after a copy-on-write fork of it, and copy
                        the memory from that fork: the pause is the fork's copy of the page
                        tables (tens of ms per GiB resident), not the copy of the memory
                        (x86-64; not under seccomp; shared, MADV_DONTFORK and
                        MADV_WIPEONFORK regions are still copied while frozen)
      --precopy         copy the memory while the target runs, tracking its writes
                        (userfaultfd, Linux 6.7), then freeze it and copy again only the
                        pages written meanwhile: the pause follows the write rate, not the
                        resident size (x86-64; not with --redact; DMA into pinned pages is
                        not seen)

Reporting:
      --stats           print capture statistics on standard error at the end
      --json            print the result and statistics as one JSON document on standard
                        output (on standard error with -o -)
  -q, --quiet           no progress line
  -h, --help            show this help
      --version         show the version

Region kinds: )" + wrapped(kindNames(), 14, 90) +
                     R"(

Exit status: 0 success, 1 error, 2 usage error, 3 partial archive (the target exited
during the capture; what was copied is in the archive, marked partial).
)";
  return text;
}

} // namespace procsnap
