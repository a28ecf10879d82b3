// A target whose threads keep invariants across megabytes of memory, for consistency tests: a
// capture is a consistent image of one instant only if every invariant that holds at every
// instant holds in the archive. Schema of its truth line: samples/README.md.
//
// - "double": two copies of a buffer, each with a checksum; writers (under a mutex) fill the
//   copy that is not current, store its checksum, then flip `current` with one store. At every
//   instant the current copy matches its checksum, so every capture must show that.
// - "inplace": one buffer and its checksum rewritten in place under a second mutex. It is
//   consistent whenever that mutex is free; a capture that froze a writer mid-update shows the
//   mutex held (its first word non-zero), and then says nothing about the buffer.
//
// Plain C++20 and libc only, like sample_target.cpp.

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <pthread.h>
#include <string>
#include <string_view>
#include <sys/mman.h>
#include <unistd.h>

namespace {

// 2 MiB of words per buffer: each one spans several 1 MiB archive chunks, so a capture that
// copied chunks at different moments would tear it.
constexpr uint64_t kWords = (2u << 20) / 8;
constexpr int kWriterCount = 2;
constexpr unsigned kDefaultExitAfterSeconds = 600;
constexpr long kWriterRestNs = 20000000; // 20 ms between a writer's updates

struct Copy {
  uint64_t checksum; // invariantChecksum(seed, words)
  uint64_t seed;     // the update that wrote it
  uint64_t words[kWords];
};

struct DoubleBuffer {
  uint64_t current; // 0 or 1: the copy that is complete
  uint64_t updates; // total updates, for tests to see the writers move
  Copy copies[2];
};

struct InPlace {
  pthread_mutex_t mutex; // in the same mapping, so a capture of anonymous memory has it
  uint64_t checksum;
  uint64_t seed;
  uint64_t words[kWords];
};

// The same functions are in tests/e2e/test_capture_consistency.cpp.
uint64_t mix(uint64_t x) { // splitmix64's finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t invariantChecksum(uint64_t seed, const volatile uint64_t* words) {
  uint64_t h = seed;
  for (uint64_t i = 0; i < kWords; ++i)
    h = (h ^ words[i]) * 0x100000001b3ull + i;
  return h;
}

DoubleBuffer* g_double = nullptr;
InPlace* g_inplace = nullptr;
pthread_mutex_t g_double_mutex = PTHREAD_MUTEX_INITIALIZER;
std::atomic<bool> g_stop{false};
std::atomic<uint64_t> g_next_seed{1};

[[noreturn]] void die(const char* message) {
  std::fprintf(stderr, "invariant_target: %s: %s\n", message, std::strerror(errno));
  std::exit(2);
}

void fill(volatile uint64_t* words, uint64_t seed) {
  for (uint64_t i = 0; i < kWords; ++i)
    words[i] = mix(seed * kWords + i);
}

void* writerMain(void*) {
  pthread_setname_np(pthread_self(), "invariant-writer");
  while (!g_stop.load(std::memory_order_relaxed)) {
    const uint64_t seed = g_next_seed.fetch_add(1);
    pthread_mutex_lock(&g_double_mutex);
    volatile DoubleBuffer* d = g_double;
    const uint64_t target = 1 - d->current;
    volatile Copy& copy = const_cast<volatile Copy&>(g_double->copies[target]);
    copy.seed = seed;
    fill(copy.words, seed);
    copy.checksum = invariantChecksum(seed, copy.words);
    std::atomic_thread_fence(std::memory_order_release);
    d->current = target; // one aligned store: the flip is atomic
    d->updates = d->updates + 1;
    pthread_mutex_unlock(&g_double_mutex);

    pthread_mutex_lock(&g_inplace->mutex);
    volatile InPlace* p = g_inplace;
    p->seed = seed;
    fill(p->words, seed);
    p->checksum = invariantChecksum(seed, p->words);
    pthread_mutex_unlock(&g_inplace->mutex);
    // A short rest, so two writers do not take every CPU of a small test machine from the
    // capturer; they still update many times a second.
    timespec rest{0, kWriterRestNs};
    nanosleep(&rest, nullptr);
  }
  return nullptr;
}

void* mapShared(size_t size) {
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    die("mmap");
  return p;
}

std::string hex(const void* p) {
  char text[32];
  std::snprintf(text, sizeof text, "\"0x%llx\"",
                static_cast<unsigned long long>(reinterpret_cast<uintptr_t>(p)));
  return text;
}

} // namespace

int main(int argc, char** argv) {
  unsigned exit_after = kDefaultExitAfterSeconds;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--exit-after" && i + 1 < argc) {
      exit_after = static_cast<unsigned>(std::strtoul(argv[++i], nullptr, 10));
    } else {
      std::fprintf(stderr, "usage: %s [--exit-after SECONDS]\n", argv[0]);
      return 2;
    }
  }
  g_double = static_cast<DoubleBuffer*>(mapShared(sizeof(DoubleBuffer)));
  g_inplace = static_cast<InPlace*>(mapShared(sizeof(InPlace)));
  // Both copies and the in-place buffer start consistent (seed 0).
  for (Copy& copy : g_double->copies) {
    fill(copy.words, 0);
    copy.checksum = invariantChecksum(0, copy.words);
  }
  pthread_mutex_init(&g_inplace->mutex, nullptr);
  fill(g_inplace->words, 0);
  g_inplace->checksum = invariantChecksum(0, g_inplace->words);

  sigset_t handled;
  sigemptyset(&handled);
  sigaddset(&handled, SIGTERM);
  sigaddset(&handled, SIGINT);
  pthread_sigmask(SIG_BLOCK, &handled, nullptr);

  pthread_t writers[kWriterCount];
  for (pthread_t& writer : writers)
    if (pthread_create(&writer, nullptr, writerMain, nullptr) != 0)
      die("pthread_create");

  std::printf("{\"pid\":%d,\"words\":%llu,\"double\":{\"addr\":%s},\"inplace\":{\"addr\":%s,"
              "\"mutex_addr\":%s}}\n",
              static_cast<int>(getpid()), static_cast<unsigned long long>(kWords),
              hex(g_double).c_str(), hex(g_inplace).c_str(), hex(&g_inplace->mutex).c_str());
  std::fflush(stdout);

  // Until a handled signal or the deadline. A capture's ptrace stop interrupts the wait with
  // EINTR: wait again for the rest of the time.
  timespec deadline{};
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  deadline.tv_sec += static_cast<time_t>(exit_after);
  for (;;) {
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec > deadline.tv_sec ||
        (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec))
      break;
    timespec left{deadline.tv_sec - now.tv_sec, deadline.tv_nsec - now.tv_nsec};
    if (left.tv_nsec < 0) {
      left.tv_nsec += 1000000000;
      --left.tv_sec;
    }
    if (sigtimedwait(&handled, nullptr, &left) >= 0 || errno != EINTR)
      break; // a signal, or the timeout (EAGAIN)
  }
  g_stop = true;
  for (pthread_t writer : writers)
    pthread_join(writer, nullptr);
  return 0;
}
