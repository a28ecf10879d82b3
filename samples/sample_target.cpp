// A target process with known memory contents. It prints one JSON line of truth about its own
// memory (addresses and values) at start and after every SIGUSR1 mutation, so tests can capture
// it and check what procsnap found against what the program knows. Schema: samples/README.md.
//
// Plain C++20 and libc only: no project library, so nothing we test shapes the layout we test.

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <string>
#include <string_view>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <vector>

// ---- Globals with known contents -------------------------------------------------------------
// `used` keeps them even where the optimizer sees no reader, external linkage keeps them out of
// constant folding, and every access below goes through a volatile pointer.

__attribute__((used)) uint64_t g_data_counter = 1234567;
__attribute__((used)) char g_data_message[64] = "procsnap-data-message-v0";
__attribute__((used)) extern const char g_rodata_string[] = "procsnap-rodata-constant-string";
__attribute__((used)) uint32_t g_bss_array[1 << 20];
__attribute__((used)) uint64_t g_bss_counter;

namespace {

constexpr uint32_t kBssPattern = 0x5a5a5a5a; // word[i] = i ^ kBssPattern
constexpr size_t kHeapSmallSize = 64;
constexpr size_t kHeapLargeSize = 6u << 20;    // above glibc's mmap threshold: served by mmap
constexpr size_t kHeapGrownSize = 8u << 20;    // one per SIGUSR1
constexpr size_t kSmallRegionSize = 64u << 10; // PROT_NONE, DONTDUMP, file and memfd regions
constexpr uint64_t kReservationSize = 32ull << 30;
constexpr size_t kResidentChunkSize = 64u << 20; // --resident-mb is split into mmaps this large
// Upper bound for --resident-mb, so a typo cannot ask for terabytes.
constexpr uint64_t kMaxResidentMb = 1u << 20;
constexpr unsigned kDefaultExitAfterSeconds = 600;
constexpr size_t kPageSize = 4096;
constexpr int kWorkerCount = 2;
constexpr const char* kWorkerNames[kWorkerCount] = {"sample-worker1", "sample-worker2"};
constexpr const char* kWorkerMarkers[kWorkerCount] = {"procsnap-stack-marker-1",
                                                      "procsnap-stack-marker-2"};
constexpr uint64_t kPrngSeed = 0x70726f63736e6170ull; // "procsnap"

constexpr const char* kHeapSmallValue = "procsnap-heap-marker-small";
constexpr const char* kHeapLargeValue = "procsnap-heap-marker-large";
constexpr const char* kSecretValue = "procsnap-secret-DONTDUMP-7f3a9c";
constexpr const char* kFileMappingValue = "procsnap-file-mapping-content";
constexpr const char* kMemfdValue = "procsnap-memfd-marker";
constexpr const char* kDontforkValue = "procsnap-dontfork-marker";
constexpr const char* kWipeonforkValue = "procsnap-wipeonfork-marker";

volatile uint64_t* const data_counter = &g_data_counter;
volatile char* const data_message = g_data_message;
volatile const char* const rodata_string = g_rodata_string;
volatile uint64_t* const bss_counter = &g_bss_counter;

[[noreturn]] void die(const char* format, ...) {
  va_list args;
  va_start(args, format);
  std::fputs("sample_target: ", stderr);
  std::vfprintf(stderr, format, args);
  std::fputc('\n', stderr);
  va_end(args);
  std::exit(2);
}

void dieErrno(const char* what) {
  die("%s: %s", what, std::strerror(errno));
}

std::string hex(const void* address) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "\"0x%llx\"",
                static_cast<unsigned long long>(reinterpret_cast<uintptr_t>(address)));
  return buffer;
}

std::string jsonString(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
      out += escaped;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// Fills [begin, begin+size) with `header` and then numbered copies of `line` ("%06zu" is the
// line number), truncating the last line, so `strings` finds plenty of text.
void fillText(char* begin, size_t size, std::string_view header, const char* line_format) {
  size_t used = std::min(size, header.size());
  std::memcpy(begin, header.data(), used);
  char line[128];
  for (size_t number = 0; used < size; ++number) {
    int length = std::snprintf(line, sizeof line, line_format, number);
    size_t take = std::min(size - used, static_cast<size_t>(length));
    std::memcpy(begin + used, line, take);
    used += take;
  }
}

void* mapAnonymous(size_t size, int prot, int extra_flags, const char* what) {
  void* address = mmap(nullptr, size, prot, MAP_PRIVATE | MAP_ANONYMOUS | extra_flags, -1, 0);
  if (address == MAP_FAILED)
    dieErrno(what);
  return address;
}

// xorshift64*: fixed seed, so every run holds the same "random" bytes.
struct Prng {
  uint64_t state = kPrngSeed;
  uint64_t next() {
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 0x2545f4914f6cdd1dull;
  }
};

// ---- Options -----------------------------------------------------------------------------------

struct Options {
  uint64_t resident_mb = 0;
  std::string pause_monitor_path; // empty: no monitor thread
  unsigned exit_after_seconds = kDefaultExitAfterSeconds;
  bool churn_threads = false; // thread `sample-churn-t` creates and joins threads in a loop
  bool churn_maps = false;    // thread `sample-churn-m` maps, checks and unmaps in a loop
};

uint64_t parseNumber(const char* option, const char* text, uint64_t max) {
  char* end = nullptr;
  errno = 0;
  unsigned long long value = std::strtoull(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || value > max)
    die("%s expects a number from 0 to %llu, got '%s'", option,
        static_cast<unsigned long long>(max), text);
  return value;
}

Options parseOptions(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help") {
      std::printf("usage: %s [--resident-mb N] [--pause-monitor FILE] [--exit-after SECONDS]\n"
                  "       [--churn-threads] [--churn-maps]\n",
                  argv[0]);
      std::exit(0);
    }
    if (arg == "--churn-threads" || arg == "--churn-maps") { // flags without a value
      (arg == "--churn-threads" ? options.churn_threads : options.churn_maps) = true;
      continue;
    }
    if (i + 1 >= argc)
      die("unknown option or missing value: '%s'", argv[i]);
    const char* value = argv[++i];
    if (arg == "--resident-mb")
      options.resident_mb = parseNumber(argv[i - 1], value, kMaxResidentMb);
    else if (arg == "--pause-monitor")
      options.pause_monitor_path = value;
    else if (arg == "--exit-after")
      options.exit_after_seconds = static_cast<unsigned>(parseNumber(argv[i - 1], value, INT_MAX));
    else
      die("unknown option: '%s'", argv[i - 1]);
  }
  return options;
}

// ---- Worker threads with a marker on their stacks ----------------------------------------------

struct WorkerReport {
  pid_t tid = 0;
  const char* name = nullptr;
  const char* marker_address = nullptr;
  std::string marker;
};

pthread_mutex_t g_mutex = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;
WorkerReport g_workers[kWorkerCount];
int g_workers_ready = 0; // guarded by g_mutex
bool g_shutdown = false; // guarded by g_mutex

void* workerMain(void* argument) {
  int index = static_cast<int>(reinterpret_cast<intptr_t>(argument));
  pthread_setname_np(pthread_self(), kWorkerNames[index]);
  char marker[64] = {};
  std::strcpy(marker, kWorkerMarkers[index]);

  pthread_mutex_lock(&g_mutex);
  g_workers[index].tid = gettid();
  g_workers[index].name = kWorkerNames[index];
  g_workers[index].marker_address = marker;
  g_workers[index].marker = marker;
  ++g_workers_ready;
  pthread_cond_broadcast(&g_cond);
  while (!g_shutdown)
    pthread_cond_wait(&g_cond, &g_mutex);
  pthread_mutex_unlock(&g_mutex);
  // Keep the marker alive (and its stores in place) until the thread ends.
  asm volatile("" : : "r"(marker) : "memory");
  return nullptr;
}

// ---- Pause monitor: how long was this process stopped? -----------------------------------------

std::atomic<bool> g_monitor_report_requested{false};
std::atomic<bool> g_monitor_stop{false};
std::atomic<pid_t> g_monitor_tid{0};

double elapsedMs(const timespec& from, const timespec& to) {
  return static_cast<double>(to.tv_sec - from.tv_sec) * 1e3 +
         static_cast<double>(to.tv_nsec - from.tv_nsec) / 1e6;
}

void writeMonitorReport(const std::string& path, double max_gap_ms, uint64_t samples) {
  // Written under a temporary name and renamed, so a reader never sees half a report.
  std::string temporary = path + ".tmp";
  FILE* file = std::fopen(temporary.c_str(), "w");
  if (file == nullptr) {
    std::fprintf(stderr, "sample_target: cannot write %s: %s\n", temporary.c_str(),
                 std::strerror(errno));
    return;
  }
  std::fprintf(file, "{\"max_gap_ms\":%.3f,\"samples\":%llu}\n", max_gap_ms,
               static_cast<unsigned long long>(samples));
  bool written = std::fclose(file) == 0;
  if (!written || std::rename(temporary.c_str(), path.c_str()) != 0)
    std::fprintf(stderr, "sample_target: cannot write %s: %s\n", path.c_str(),
                 std::strerror(errno));
}

void* monitorMain(void* argument) {
  const std::string& path = *static_cast<const std::string*>(argument);
  pthread_setname_np(pthread_self(), "sample-monitor");
  g_monitor_tid = gettid();
  constexpr long kPeriodNs = 1000000; // wake every millisecond
  timespec previous{};
  clock_gettime(CLOCK_MONOTONIC, &previous);
  timespec next = previous;
  double max_gap_ms = 0;
  uint64_t samples = 0;
  while (!g_monitor_stop.load(std::memory_order_relaxed)) {
    next.tv_nsec += kPeriodNs;
    if (next.tv_nsec >= 1000000000) {
      next.tv_nsec -= 1000000000;
      ++next.tv_sec;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, nullptr) == EINTR) {
    }
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    max_gap_ms = std::max(max_gap_ms, elapsedMs(previous, now));
    ++samples;
    previous = now;
    if (elapsedMs(next, now) > 1.0)
      next = now; // fell behind (we were stopped): do not try to catch up with a burst
    if (g_monitor_report_requested.exchange(false)) {
      writeMonitorReport(path, max_gap_ms, samples);
      max_gap_ms = 0;
      samples = 0;
      clock_gettime(CLOCK_MONOTONIC, &previous); // the write itself is not a pause
    }
  }
  return nullptr;
}

// ---- Churn: threads and mappings that come and go while a capture runs -------------------------

constexpr int kChurnThreadBatch = 4;    // threads alive at once in the thread churn
constexpr uint64_t kChurnMaxPages = 64; // largest mapping of the map churn, in pages
std::atomic<bool> g_churn_stop{false};
std::atomic<uint64_t> g_churn_threads_started{0};

void* shortLivedMain(void*) {
  g_churn_threads_started.fetch_add(1, std::memory_order_relaxed);
  return nullptr;
}

void* threadChurnMain(void*) {
  pthread_setname_np(pthread_self(), "sample-churn-t");
  while (!g_churn_stop.load(std::memory_order_relaxed)) {
    pthread_t batch[kChurnThreadBatch];
    int started = 0;
    for (int i = 0; i < kChurnThreadBatch; ++i)
      if (pthread_create(&batch[started], nullptr, shortLivedMain, nullptr) == 0)
        ++started; // EAGAIN under pressure: fewer this round
    for (int i = 0; i < started; ++i)
      pthread_join(batch[i], nullptr);
  }
  return nullptr;
}

// Maps anonymous memory, writes a tag into every page, splits the mapping with mprotect now
// and then, reads the tags back and unmaps. A capture that wrote into the target or lost a
// page the target owns would make the check fail, and the sample exits with an error.
void* mapChurnMain(void*) {
  pthread_setname_np(pthread_self(), "sample-churn-m");
  Prng random;
  while (!g_churn_stop.load(std::memory_order_relaxed)) {
    const uint64_t pages = 1 + random.next() % kChurnMaxPages;
    const size_t size = pages * kPageSize;
    void* mapping = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapping == MAP_FAILED)
      continue; // ENOMEM under pressure: try again
    auto* bytes = static_cast<volatile uint64_t*>(mapping);
    const uint64_t tag = random.next();
    for (uint64_t page = 0; page < pages; ++page)
      bytes[page * kPageSize / 8] = tag + page;
    if (pages > 1 && (tag & 1) != 0)
      mprotect(mapping, kPageSize, PROT_READ); // one mapping becomes two
    for (uint64_t page = 0; page < pages; ++page)
      if (bytes[page * kPageSize / 8] != tag + page)
        die("map churn: page %llu of %p changed under us", static_cast<unsigned long long>(page),
            mapping);
    munmap(mapping, size);
  }
  return nullptr;
}

// ---- Regions -----------------------------------------------------------------------------------

struct HeapBlock {
  const char* address = nullptr;
  size_t size = 0; // 0: do not report a size
  std::string value;
};

struct Regions {
  char* heap_small = nullptr;
  char* heap_large = nullptr;
  std::vector<HeapBlock> heap_grown;
  void* prot_none = nullptr;
  void* reservation = nullptr;
  char* dontdump = nullptr;
  char* file_mapping = nullptr;
  std::string file_path; // removed at a clean exit
  char* memfd = nullptr;
  char* dontfork = nullptr;   // MADV_DONTFORK: absent from any fork (capture --cow)
  char* wipeonfork = nullptr; // MADV_WIPEONFORK: zeros in any fork
  std::vector<void*> resident;
};

void fillBssArray() {
  for (uint32_t i = 0; i < (1u << 20); ++i)
    g_bss_array[i] = i ^ kBssPattern;
}

char* makeFileMapping(std::string& path_out) {
  const char* directory = std::getenv("TMPDIR");
  if (directory == nullptr || directory[0] == '\0')
    directory = "/tmp";
  std::string path = std::string(directory) + "/procsnap-sample-XXXXXX";
  int fd = mkstemp(path.data());
  if (fd < 0)
    dieErrno("mkstemp");
  char resolved[PATH_MAX];
  if (realpath(path.c_str(), resolved) != nullptr)
    path = resolved; // maps shows the canonical path
  path_out = path;
  std::vector<char> content(kSmallRegionSize);
  fillText(content.data(), content.size(), "", "procsnap-file-mapping-content %06zu\n");
  for (size_t done = 0; done < content.size();) {
    ssize_t n = write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno != EINTR)
      dieErrno("write temp file");
    if (n > 0)
      done += static_cast<size_t>(n);
  }
  void* address = mmap(nullptr, kSmallRegionSize, PROT_READ, MAP_PRIVATE, fd, 0);
  if (address == MAP_FAILED)
    dieErrno("mmap temp file");
  close(fd); // the mapping keeps the file open
  return static_cast<char*>(address);
}

char* makeMemfdMapping() {
  int fd = memfd_create("procsnap-memfd", MFD_CLOEXEC);
  if (fd < 0)
    dieErrno("memfd_create");
  if (ftruncate(fd, kSmallRegionSize) != 0)
    dieErrno("ftruncate memfd");
  void* address = mmap(nullptr, kSmallRegionSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (address == MAP_FAILED)
    dieErrno("mmap memfd");
  close(fd);
  char* bytes = static_cast<char*>(address);
  fillText(bytes, kSmallRegionSize, "", "procsnap-memfd-marker %06zu\n");
  return bytes;
}

char* makeDontdumpRegion() {
  char* bytes = static_cast<char*>(
      mapAnonymous(kSmallRegionSize, PROT_READ | PROT_WRITE, 0, "mmap dontdump region"));
  size_t length = std::strlen(kSecretValue);
  for (size_t offset = 0; offset + length + 1 <= kSmallRegionSize; offset += length + 1) {
    std::memcpy(bytes + offset, kSecretValue, length);
    bytes[offset + length] = '\n';
  }
  if (madvise(bytes, kSmallRegionSize, MADV_DONTDUMP) != 0)
    dieErrno("madvise MADV_DONTDUMP");
  return bytes;
}

// An anonymous region of text lines "VALUE NNNNNN", then madvise(advice).
char* makeAdvisedRegion(int advice, const char* value, const char* what) {
  char* bytes = static_cast<char*>(mapAnonymous(kSmallRegionSize, PROT_READ | PROT_WRITE, 0, what));
  fillText(bytes, kSmallRegionSize, "", (std::string(value) + " %06zu\n").c_str());
  if (madvise(bytes, kSmallRegionSize, advice) != 0)
    dieErrno(what);
  return bytes;
}

// Fills one page with one of four kinds of content, so compression sees a realistic mix:
// zero, random, text-like and pointer-like pages, in turn.
void fillResidentPage(unsigned char* page, uint64_t page_index, Prng& prng) {
  // 16 words, so one PRNG draw picks 16 of them (4 bits each).
  static constexpr std::string_view kWords[16] = {
      "alpha ", "beta ",    "gamma ", "delta ", "error ", "warn ", "info ", "user ",
      "id=",    "request ", "0x7f ",  "true ",  "false ", "null ", "ok ",   "\n"};
  switch (page_index % 4) {
  case 0:
    std::memset(page, 0, kPageSize); // a write, so the page is resident but all zero
    break;
  case 1:
    for (size_t i = 0; i < kPageSize; i += 8) {
      uint64_t word = prng.next();
      std::memcpy(page + i, &word, 8);
    }
    break;
  case 2: {
    size_t used = 0;
    while (used < kPageSize) {
      for (uint64_t draw = prng.next(), n = 0; n < 16 && used < kPageSize; ++n, draw >>= 4) {
        std::string_view word = kWords[draw & 15];
        size_t take = std::min(kPageSize - used, word.size());
        std::memcpy(page + used, word.data(), take);
        used += take;
      }
    }
    break;
  }
  default:
    for (size_t i = 0; i < kPageSize; i += 8) {
      // Heap- and library-looking pointers, 16-byte aligned, in a few nearby ranges.
      uint64_t random = prng.next();
      uint64_t base = (random & 1) ? 0x00007f3a9c000000ull : 0x000055d4e8200000ull;
      uint64_t word = base + ((random >> 8) & 0xffffff0ull);
      std::memcpy(page + i, &word, 8);
    }
    break;
  }
}

std::vector<void*> makeResident(uint64_t megabytes) {
  std::vector<void*> chunks;
  Prng prng;
  uint64_t remaining = megabytes << 20;
  uint64_t page_index = 0;
  while (remaining > 0) {
    size_t size = static_cast<size_t>(std::min<uint64_t>(remaining, kResidentChunkSize));
    auto* bytes = static_cast<unsigned char*>(
        mapAnonymous(size, PROT_READ | PROT_WRITE, 0, "mmap resident memory"));
    for (size_t offset = 0; offset < size; offset += kPageSize)
      fillResidentPage(bytes + offset, page_index++, prng);
    chunks.push_back(bytes);
    remaining -= size;
  }
  return chunks;
}

char* allocateText(size_t size, std::string_view header, const char* line_format) {
  char* bytes = static_cast<char*>(std::malloc(size));
  if (bytes == nullptr)
    die("out of memory allocating %zu bytes", size);
  fillText(bytes, size, header, line_format);
  return bytes;
}

Regions makeRegions(const Options& options) {
  Regions regions;
  fillBssArray();
  regions.heap_small = static_cast<char*>(std::calloc(1, kHeapSmallSize));
  if (regions.heap_small == nullptr)
    die("out of memory allocating %zu bytes", kHeapSmallSize);
  std::strcpy(regions.heap_small, kHeapSmallValue);
  regions.heap_large = allocateText(kHeapLargeSize, std::string(kHeapLargeValue) + "\n",
                                    "line %06zu procsnap large heap text\n");
  regions.prot_none = mapAnonymous(kSmallRegionSize, PROT_NONE, 0, "mmap PROT_NONE region");
  regions.reservation = mapAnonymous(kReservationSize, PROT_READ | PROT_WRITE, MAP_NORESERVE,
                                     "mmap 32 GiB reservation");
  regions.dontdump = makeDontdumpRegion();
  regions.file_mapping = makeFileMapping(regions.file_path);
  regions.memfd = makeMemfdMapping();
  regions.dontfork = makeAdvisedRegion(MADV_DONTFORK, kDontforkValue, "madvise MADV_DONTFORK");
  regions.wipeonfork =
      makeAdvisedRegion(MADV_WIPEONFORK, kWipeonforkValue, "madvise MADV_WIPEONFORK");
  regions.resident = makeResident(options.resident_mb);
  return regions;
}

// ---- SIGUSR1: mutate
// -----------------------------------------------------------------------------

void mutate(Regions& regions, unsigned generation) {
  *data_counter = *data_counter + 1000;
  char message[64] = {};
  std::snprintf(message, sizeof message, "procsnap-data-message-v%u", generation);
  for (size_t i = 0; i < sizeof message; ++i)
    data_message[i] = message[i];
  *bss_counter = *bss_counter + 1;

  char value[64];
  std::snprintf(value, sizeof value, "procsnap-heap-grown-%u", generation);
  std::string line_format = std::string(value) + " line %06zu\n";
  char* grown = allocateText(kHeapGrownSize, std::string(value) + "\n", line_format.c_str());
  regions.heap_grown.push_back({grown, kHeapGrownSize, value});

  std::snprintf(value, sizeof value, "procsnap-heap-grown-small-%u", generation);
  char* small = static_cast<char*>(std::calloc(1, kHeapSmallSize));
  if (small == nullptr)
    die("out of memory allocating %zu bytes", kHeapSmallSize);
  std::strcpy(small, value);
  regions.heap_grown.push_back({small, 0, value});
}

// ---- The line of truth
// ---------------------------------------------------------------------------

std::string readDataMessage() {
  char message[sizeof g_data_message + 1] = {};
  for (size_t i = 0; i < sizeof g_data_message; ++i)
    message[i] = data_message[i];
  return message;
}

std::string readRodataString() {
  std::string text;
  for (size_t i = 0; rodata_string[i] != '\0'; ++i)
    text += rodata_string[i];
  return text;
}

std::string exePath() {
  char path[PATH_MAX] = {};
  ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
  if (n < 0)
    dieErrno("readlink /proc/self/exe");
  return std::string(path, static_cast<size_t>(n));
}

std::string truthLine(const Regions& regions, const Options& options, unsigned generation) {
  auto address = [](const void* pointer) { return hex(pointer); };
  auto number = [](uint64_t value) { return std::to_string(value); };
#ifdef __PIE__
  const char* variant = "pie";
#else
  const char* variant = "nopie";
#endif
  std::string line = "{\"pid\":" + number(getpid()) + ",\"variant\":\"" + variant +
                     "\",\"generation\":" + number(generation) +
                     ",\"exe\":" + jsonString(exePath());
  line += ",\"data_counter\":{\"addr\":" + address(&g_data_counter) +
          ",\"size\":8,\"value\":" + number(*data_counter) + "}";
  line += ",\"data_message\":{\"addr\":" + address(g_data_message) +
          ",\"size\":64,\"value\":" + jsonString(readDataMessage()) + "}";
  line += ",\"rodata_string\":{\"addr\":" + address(g_rodata_string) +
          ",\"value\":" + jsonString(readRodataString()) + "}";
  line += ",\"bss_array\":{\"addr\":" + address(g_bss_array) +
          ",\"size\":" + number(sizeof g_bss_array) + "}";
  line += ",\"bss_counter\":{\"addr\":" + address(&g_bss_counter) +
          ",\"size\":8,\"value\":" + number(*bss_counter) + "}";
  line += ",\"heap_small\":{\"addr\":" + address(regions.heap_small) +
          ",\"value\":" + jsonString(kHeapSmallValue) + "}";
  line += ",\"heap_large\":{\"addr\":" + address(regions.heap_large) +
          ",\"size\":" + number(kHeapLargeSize) + ",\"value\":" + jsonString(kHeapLargeValue) + "}";
  line += ",\"heap_grown\":[";
  for (size_t i = 0; i < regions.heap_grown.size(); ++i) {
    const HeapBlock& block = regions.heap_grown[i];
    line += i == 0 ? "{" : ",{";
    line += "\"addr\":" + address(block.address);
    if (block.size != 0)
      line += ",\"size\":" + number(block.size);
    line += ",\"value\":" + jsonString(block.value) + "}";
  }
  line += "],\"threads\":[";
  for (int i = 0; i < kWorkerCount; ++i) {
    const WorkerReport& worker = g_workers[i];
    line += i == 0 ? "{" : ",{";
    line += "\"tid\":" + number(worker.tid) + ",\"name\":" + jsonString(worker.name) +
            ",\"stack_marker_addr\":" + address(worker.marker_address) +
            ",\"stack_marker\":" + jsonString(worker.marker) + "}";
  }
  line += "],\"main_tid\":" + number(gettid());
  line += ",\"prot_none\":{\"addr\":" + address(regions.prot_none) +
          ",\"size\":" + number(kSmallRegionSize) + "}";
  line += ",\"reservation\":{\"addr\":" + address(regions.reservation) +
          ",\"size\":" + number(kReservationSize) + "}";
  line += ",\"dontdump\":{\"addr\":" + address(regions.dontdump) +
          ",\"size\":" + number(kSmallRegionSize) + ",\"secret\":" + jsonString(kSecretValue) + "}";
  line += ",\"file_mapping\":{\"addr\":" + address(regions.file_mapping) +
          ",\"size\":" + number(kSmallRegionSize) + ",\"path\":" + jsonString(regions.file_path) +
          ",\"value\":" + jsonString(kFileMappingValue) + "}";
  line += ",\"memfd\":{\"addr\":" + address(regions.memfd) +
          ",\"size\":" + number(kSmallRegionSize) + ",\"value\":" + jsonString(kMemfdValue) + "}";
  line += ",\"dontfork\":{\"addr\":" + address(regions.dontfork) +
          ",\"size\":" + number(kSmallRegionSize) + ",\"value\":" + jsonString(kDontforkValue) +
          "}";
  line += ",\"wipeonfork\":{\"addr\":" + address(regions.wipeonfork) +
          ",\"size\":" + number(kSmallRegionSize) + ",\"value\":" + jsonString(kWipeonforkValue) +
          "}";
  line += ",\"resident\":{\"addr_list\":[";
  for (size_t i = 0; i < regions.resident.size(); ++i)
    line += (i == 0 ? "" : ",") + address(regions.resident[i]);
  line += "],\"size_mb\":" + number(options.resident_mb) + "}";
  if (!options.pause_monitor_path.empty())
    line += ",\"pause_monitor\":{\"tid\":" + number(g_monitor_tid.load()) +
            ",\"path\":" + jsonString(options.pause_monitor_path) + "}";
  return line + "}\n";
}

void printTruth(const Regions& regions, const Options& options, unsigned generation) {
  std::string line = truthLine(regions, options, generation);
  for (size_t done = 0; done < line.size();) {
    ssize_t n = write(STDOUT_FILENO, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return; // nobody reads stdout any more: keep running until killed or --exit-after
    done += static_cast<size_t>(n);
  }
}

// ---- Main
// ----------------------------------------------------------------------------------------

int64_t monotonicMs() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<int64_t>(now.tv_sec) * 1000 + now.tv_nsec / 1000000;
}

} // namespace

int main(int argc, char** argv) {
  Options options = parseOptions(argc, argv);
  std::signal(SIGPIPE, SIG_IGN);

  // Every thread inherits this mask, so these signals reach only the signalfd read below, never
  // a handler that runs in the middle of other work.
  sigset_t handled;
  sigemptyset(&handled);
  for (int signal_number : {SIGUSR1, SIGUSR2, SIGTERM, SIGINT, SIGHUP})
    sigaddset(&handled, signal_number);
  if (pthread_sigmask(SIG_BLOCK, &handled, nullptr) != 0)
    die("pthread_sigmask failed");
  int signal_fd = signalfd(-1, &handled, SFD_CLOEXEC);
  if (signal_fd < 0)
    dieErrno("signalfd");

  Regions regions = makeRegions(options);

  pthread_t workers[kWorkerCount];
  for (int i = 0; i < kWorkerCount; ++i)
    if (pthread_create(&workers[i], nullptr, workerMain, reinterpret_cast<void*>(intptr_t{i})) != 0)
      die("pthread_create failed");
  pthread_t monitor{};
  bool monitor_started = !options.pause_monitor_path.empty();
  if (monitor_started &&
      pthread_create(&monitor, nullptr, monitorMain, &options.pause_monitor_path) != 0)
    die("pthread_create failed");

  pthread_t churn_threads{};
  pthread_t churn_maps{};
  if (options.churn_threads &&
      pthread_create(&churn_threads, nullptr, threadChurnMain, nullptr) != 0)
    die("pthread_create failed");
  if (options.churn_maps && pthread_create(&churn_maps, nullptr, mapChurnMain, nullptr) != 0)
    die("pthread_create failed");

  pthread_mutex_lock(&g_mutex);
  while (g_workers_ready < kWorkerCount)
    pthread_cond_wait(&g_cond, &g_mutex);
  pthread_mutex_unlock(&g_mutex);
  while (monitor_started && g_monitor_tid.load() == 0)
    usleep(1000);

  unsigned generation = 0;
  printTruth(regions, options, generation);

  const int64_t deadline_ms = monotonicMs() + int64_t{options.exit_after_seconds} * 1000;
  bool running = true;
  while (running) {
    int64_t remaining_ms = deadline_ms - monotonicMs();
    if (remaining_ms <= 0) {
      std::fprintf(stderr, "sample_target: --exit-after %u reached, exiting\n",
                   options.exit_after_seconds);
      break;
    }
    pollfd watched{signal_fd, POLLIN, 0};
    int ready = poll(&watched, 1, static_cast<int>(std::min<int64_t>(remaining_ms, 1000)));
    if (ready <= 0)
      continue; // timeout or EINTR (a ptrace stop): check the deadline again
    signalfd_siginfo info{};
    if (read(signal_fd, &info, sizeof info) != static_cast<ssize_t>(sizeof info))
      continue;
    switch (info.ssi_signo) {
    case SIGUSR1:
      mutate(regions, ++generation);
      printTruth(regions, options, generation);
      break;
    case SIGUSR2:
      g_monitor_report_requested = true;
      break;
    default: // SIGTERM, SIGINT, SIGHUP: clean exit
      running = false;
      break;
    }
  }

  pthread_mutex_lock(&g_mutex);
  g_shutdown = true;
  pthread_cond_broadcast(&g_cond);
  pthread_mutex_unlock(&g_mutex);
  for (pthread_t worker : workers)
    pthread_join(worker, nullptr);
  g_monitor_stop = true;
  if (monitor_started)
    pthread_join(monitor, nullptr);
  g_churn_stop = true;
  if (options.churn_threads)
    pthread_join(churn_threads, nullptr);
  if (options.churn_maps)
    pthread_join(churn_maps, nullptr);
  unlink(regions.file_path.c_str());
  return 0;
}
