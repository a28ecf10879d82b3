#include "capture/frozen_process.h"

#include "capture/process_inspector.h"
#include "capture/ptrace_calls.h"
#include "common/proc/files.h"
#include "common/proc/status.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <elf.h>
#include <fcntl.h>
#include <span>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

namespace procsnap {

namespace {

using Clock = std::chrono::steady_clock;

// Register sets asked for, in this order. Sets the kernel or CPU does not have are skipped.
#ifndef NT_X86_SHSTK
#define NT_X86_SHSTK 0x204
#endif
constexpr uint32_t kRegisterSetTypes[] = {NT_PRSTATUS, NT_PRFPREG,
#if defined(__x86_64__)
                                          NT_X86_XSTATE, NT_X86_SHSTK
#endif
};
// XSAVE areas reach ~11 KiB with AMX; the kernel trims iov_len to the real size.
constexpr size_t kRegisterSetBufferSize = 64u << 10;
// A process with more threads than this still freezes, but the extra threads are missing
// from the emergency table (a dying capturer still detaches them: the kernel does on exit).
constexpr size_t kEmergencySlots = 1u << 16;
// Polling backoff while waiting for a thread to report its stop: the first poll is almost
// always answered, so start short and stay responsive to the deadline.
constexpr auto kFirstPollSleep = std::chrono::microseconds(20);
constexpr auto kMaxPollSleep = kMaxWaitPoll;

// The emergency table: tids of every thread we may have seized, written before PTRACE_SEIZE
// and cleared after PTRACE_DETACH. A signal handler walks it with plain syscalls.
std::atomic<pid_t> g_emergency_tids[kEmergencySlots];
std::atomic<size_t> g_emergency_used{0}; // every used slot is below this index
static_assert(std::atomic<pid_t>::is_always_lock_free);
static_assert(std::atomic<size_t>::is_always_lock_free);

int reserveEmergencySlot(pid_t tid) {
  // Start where the last reservation ended, so freezing N threads costs O(N), not O(N^2).
  static std::atomic<size_t> next{0};
  const size_t first = next.load() % kEmergencySlots;
  for (size_t n = 0; n < kEmergencySlots; ++n) {
    const size_t i = (first + n) % kEmergencySlots;
    pid_t expected = 0;
    if (g_emergency_tids[i].compare_exchange_strong(expected, tid)) {
      next.store(i + 1);
      size_t used = g_emergency_used.load();
      while (used < i + 1 && !g_emergency_used.compare_exchange_weak(used, i + 1)) {
      }
      return static_cast<int>(i);
    }
  }
  return -1;
}

void releaseEmergencySlot(int slot) {
  if (slot >= 0)
    g_emergency_tids[slot].store(0);
}

std::string taskPath(pid_t pid, pid_t tid, const char* name) {
  return "/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/" + name;
}

// The state letter of /proc/PID/task/TID/stat (after the last ')': comm may hold any byte).
std::string threadState(pid_t pid, pid_t tid) {
  auto stat = readProcFile(taskPath(pid, tid, "stat"), 4096);
  if (!stat)
    return {};
  const size_t paren = stat->rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat->size())
    return {};
  return std::string(1, (*stat)[paren + 2]);
}

std::string threadName(pid_t pid, pid_t tid) {
  auto comm = readProcFile(taskPath(pid, tid, "comm"), 4096);
  if (!comm)
    return {};
  std::string name = std::move(*comm);
  while (!name.empty() && name.back() == '\n')
    name.pop_back();
  return name;
}

Result<std::vector<pid_t>> listTasks(pid_t pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/task";
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) {
    const int err = errno;
    if (err == ENOENT || err == ESRCH)
      return Error::make(ErrorCode::ProcessGone, "process " + std::to_string(pid) + " exited");
    return Error::make(ErrorCode::Io, "cannot list " + path + ": " + std::strerror(err));
  }
  std::vector<pid_t> tids;
  while (const dirent* entry = ::readdir(dir)) {
    char* end = nullptr;
    const long tid = std::strtol(entry->d_name, &end, 10);
    if (end != entry->d_name && *end == '\0' && tid > 0)
      tids.push_back(static_cast<pid_t>(tid));
  }
  ::closedir(dir);
  return tids;
}

bool hasPtraceCapability() {
  auto status = readProcFile("/proc/self/status", 1u << 16);
  if (!status)
    return false;
  auto parsed = parseStatus(*status);
  if (!parsed)
    return false;
  auto cap_eff = parsed->get("CapEff");
  if (!cap_eff)
    return false;
  constexpr int kCapSysPtrace = 19;
  const unsigned long long caps = std::strtoull(std::string(*cap_eff).c_str(), nullptr, 16);
  return (caps >> kCapSysPtrace) & 1;
}

void sleepFor(std::chrono::nanoseconds duration) {
  timespec request{};
  request.tv_sec = static_cast<time_t>(duration.count() / 1000000000);
  request.tv_nsec = static_cast<long>(duration.count() % 1000000000);
  ::nanosleep(&request, nullptr); // deliberately ignored: an early wake-up just polls sooner
}

} // namespace

void emergencyThawAll() noexcept {
  const size_t used = g_emergency_used.load();
  for (size_t i = 0; i < used && i < kEmergencySlots; ++i) {
    const pid_t tid = g_emergency_tids[i].exchange(0);
    if (tid > 0)
      ::syscall(SYS_ptrace, PTRACE_DETACH, tid, nullptr, nullptr);
  }
}

Result<std::unique_ptr<FrozenProcess>> FrozenProcess::freeze(pid_t pid,
                                                             const FreezeOptions& options) {
  if (pid <= 0)
    return Error::make(ErrorCode::InvalidArgument, "invalid pid: " + std::to_string(pid));
  auto status_text = readProcFile("/proc/" + std::to_string(pid) + "/status", 1u << 16);
  if (!status_text) {
    if (status_text.error().code == ErrorCode::NotFound ||
        status_text.error().code == ErrorCode::ProcessGone)
      return Error::make(ErrorCode::NotFound, "no such process: " + std::to_string(pid));
    return std::move(status_text).takeError();
  }
  auto status = parseStatus(*status_text);
  if (!status)
    return std::move(status).takeError();
  if (status->tgid != 0 && status->tgid != pid)
    return Error::make(ErrorCode::InvalidArgument,
                       std::to_string(pid) + " is a thread of process " +
                           std::to_string(status->tgid) + ": give the process id");
  if (pid == ::getpid())
    return Error::make(ErrorCode::InvalidArgument, "cannot freeze the capturing process itself");

  std::unique_ptr<FrozenProcess> process(new FrozenProcess());
  process->pid_ = pid;
  const Clock::time_point deadline = Clock::now() + options.timeout;
  auto seized = process->seizeAll(deadline);
  if (!seized) {
    (void)process->thaw(); // deliberately ignored: the freeze error is the one to report
    return std::move(seized).takeError();
  }
  auto read = process->readThreads();
  if (!read) {
    (void)process->thaw(); // deliberately ignored: the read error is the one to report
    return std::move(read).takeError();
  }
  return process;
}

Result<void> FrozenProcess::seizeAll(Clock::time_point deadline) {
  frozen_ = true; // from the first seize on, thaw() has work to do
  for (;;) {
    auto tids = listTasks(pid_);
    if (!tids)
      return std::move(tids).takeError();
    const size_t first_new = tracees_.size();
    // A scan is clean when it listed no thread that was exiting. readdir of /proc/PID/task
    // can skip a live thread when the thread it just listed exits (the kernel then resumes
    // by index, and the list has shifted), so only a clean scan proves nothing was missed.
    bool clean_scan = true;
    for (pid_t tid : *tids) {
      const bool known =
          std::any_of(seen_.begin(), seen_.end(), [tid](const auto& s) { return s.first == tid; });
      if (known)
        continue;
      std::string state = threadState(pid_, tid);
      if (state.empty()) {
        clean_scan = false;
        continue; // exited between readdir and now
      }
      if (state == "Z" || state == "X") {
        // A zombie cannot stop and holds no user state. Only the leader lingers as one (its
        // thread exited, the process lives on) and is listed; any other is about to vanish.
        if (tid == pid_)
          seen_.emplace_back(tid, state);
        else
          clean_scan = false;
        continue;
      }
      seen_.emplace_back(tid, state);
      Tracee tracee;
      tracee.tid = tid;
      tracee.emergency_slot = reserveEmergencySlot(tid);
      if (ptraceCall(PTRACE_SEIZE, tid, nullptr, nullptr) != 0) {
        const int err = errno;
        releaseEmergencySlot(tracee.emergency_slot);
        seen_.pop_back();
        if (err == ESRCH) {
          clean_scan = false;
          continue; // the thread exited meanwhile
        }
        if (err == EPERM && tid != pid_) {
          // The kernel refuses to attach a task whose exit has begun (exit_state set): the
          // thread was alive when its state was read and exited since. It shows as a zombie or
          // is gone; anything else is a real refusal (say, another tracer got there first).
          const std::string now = threadState(pid_, tid);
          if (now.empty() || now == "Z" || now == "X") {
            clean_scan = false;
            continue;
          }
        }
        if (tid == pid_ || tracees_.empty()) {
          if (err == EPERM || err == EACCES)
            return permissionError(err);
        }
        if (processExited(pid_))
          return Error::make(ErrorCode::ProcessGone, "process " + std::to_string(pid_) + " exited");
        return Error::make(ErrorCode::Generic, "cannot trace thread " + std::to_string(tid) +
                                                   " of " + std::to_string(pid_) + ": " +
                                                   std::strerror(err));
      }
      if (tracees_.empty())
        first_stop_ = Clock::now();
      tracees_.push_back(tracee); // from now on thaw() detaches it
      if (ptraceCall(PTRACE_INTERRUPT, tid, nullptr, nullptr) != 0 && errno != ESRCH)
        return Error::make(ErrorCode::Generic, "cannot interrupt thread " + std::to_string(tid) +
                                                   ": " + std::strerror(errno));
    }
    if (tracees_.size() == first_new && first_new > 0) {
      if (clean_scan)
        return success();        // a clean rescan with every thread stopped found nothing new
      sleepFor(kFirstPollSleep); // let the exiting threads finish before listing again
    }
    for (size_t i = first_new; i < tracees_.size(); ++i)
      PROCSNAP_TRY(waitForStop(tracees_[i], deadline));
    // Drop threads that exited while we waited for them.
    std::erase_if(tracees_, [](const Tracee& t) { return t.tid == 0; });
    if (tracees_.empty()) {
      if (processExited(pid_))
        return Error::make(ErrorCode::ProcessGone, "process " + std::to_string(pid_) + " exited");
      if (Clock::now() > deadline)
        return Error::make(ErrorCode::Generic,
                           "timed out freezing " + std::to_string(pid_) + ": no thread stopped");
    }
    if (Clock::now() > deadline)
      return Error::make(ErrorCode::Generic,
                         "timed out freezing " + std::to_string(pid_) + ": threads kept appearing");
  }
}

Result<void> FrozenProcess::waitForStop(Tracee& tracee, Clock::time_point deadline) {
  std::chrono::nanoseconds pause = kFirstPollSleep;
  for (;;) {
    int status = 0;
    const pid_t got = ::waitpid(tracee.tid, &status, __WALL | WNOHANG);
    if (got == tracee.tid) {
      if (WIFSTOPPED(status)) {
        tracee.stopped = true;
        tracee.interrupt_stop = (status >> 16) == PTRACE_EVENT_STOP && WSTOPSIG(status) == SIGTRAP;
        // A signal-delivery-stop (no event) intercepted a signal: give it back on detach.
        // An event stop (PTRACE_EVENT_STOP, group-stop) carries nothing to re-inject.
        if ((status >> 16) == 0)
          tracee.pending_signal = WSTOPSIG(status);
        return success();
      }
      if (WIFEXITED(status) || WIFSIGNALED(status)) {
        releaseEmergencySlot(tracee.emergency_slot);
        std::erase_if(seen_, [&](const auto& s) { return s.first == tracee.tid; });
        tracee.tid = 0; // gone: dropped by the caller
        return success();
      }
      continue;
    }
    if (got < 0) {
      if (errno == EINTR)
        continue;
      // ECHILD: no longer our tracee (it exited and was reaped).
      releaseEmergencySlot(tracee.emergency_slot);
      std::erase_if(seen_, [&](const auto& s) { return s.first == tracee.tid; });
      tracee.tid = 0;
      return success();
    }
    if (Clock::now() > deadline) {
      if (processExited(pid_))
        return Error::make(ErrorCode::ProcessGone, "process " + std::to_string(pid_) + " exited");
      return Error::make(ErrorCode::Generic, "timed out freezing " + std::to_string(pid_) +
                                                 ": thread " + std::to_string(tracee.tid) +
                                                 " did not stop");
    }
    sleepFor(pause);
    pause = std::min<std::chrono::nanoseconds>(pause * 2, kMaxPollSleep);
  }
}

Result<void> FrozenProcess::readThreads() {
  threads_.clear();
  std::vector<std::byte> buffer(kRegisterSetBufferSize);
  for (const auto& [tid, state] : seen_) {
    ThreadRecord thread;
    thread.tid = tid;
    thread.name = threadName(pid_, tid);
    thread.state = state;
    const bool traced = std::any_of(tracees_.begin(), tracees_.end(),
                                    [tid](const Tracee& t) { return t.tid == tid; });
    for (uint32_t type : traced ? std::span(kRegisterSetTypes) : std::span<const uint32_t>()) {
      iovec vector{buffer.data(), buffer.size()};
      if (ptraceCall(PTRACE_GETREGSET, tid, reinterpret_cast<void*>(uintptr_t{type}), &vector) !=
          0) {
        if (errno == ESRCH && processExited(pid_))
          return Error::make(ErrorCode::ProcessGone, "process " + std::to_string(pid_) + " exited");
        continue; // this kernel or CPU has no such set
      }
      RegisterSet set;
      set.note_type = type;
      set.bytes.assign(buffer.begin(), buffer.begin() + static_cast<ptrdiff_t>(vector.iov_len));
      if (type == NT_PRSTATUS) {
#if defined(__x86_64__)
        // user_regs_struct: rip is word 16, rsp word 19.
        constexpr size_t kPcWord = 16, kSpWord = 19;
#elif defined(__aarch64__)
        // user_pt_regs: regs[31], then sp (word 31) and pc (word 32).
        constexpr size_t kPcWord = 32, kSpWord = 31;
#else
#error "unsupported architecture: add the pc/sp words of NT_PRSTATUS"
#endif
        if (set.bytes.size() >= (std::max(kPcWord, kSpWord) + 1) * 8) {
          std::memcpy(&thread.pc, set.bytes.data() + kPcWord * 8, 8);
          std::memcpy(&thread.sp, set.bytes.data() + kSpWord * 8, 8);
        }
      }
      thread.register_sets.push_back(std::move(set));
    }
    threads_.push_back(std::move(thread));
  }
  // Main thread first, then by tid.
  std::sort(threads_.begin(), threads_.end(), [this](const ThreadRecord& a, const ThreadRecord& b) {
    if ((a.tid == pid_) != (b.tid == pid_))
      return a.tid == pid_;
    return a.tid < b.tid;
  });
  return success();
}

Error FrozenProcess::permissionError(int seize_errno) const {
  const std::string prefix = "cannot freeze " + std::to_string(pid_) + ": ";
  auto status_text = readProcFile("/proc/" + std::to_string(pid_) + "/status", 1u << 16);
  if (status_text) {
    if (auto status = parseStatus(*status_text); status && status->tracer_pid != 0) {
      std::string tracer = threadName(status->tracer_pid, status->tracer_pid);
      return Error::make(ErrorCode::PermissionDenied,
                         prefix + "already traced by PID " + std::to_string(status->tracer_pid) +
                             (tracer.empty() ? "" : " (" + tracer + ")"));
    }
  }
  auto stat = readProcFile("/proc/" + std::to_string(pid_) + "/stat", 4096);
  if (stat) {
    // Field 9 (flags) after the comm: PF_KTHREAD marks kernel threads, which have no memory.
    const size_t paren = stat->rfind(')');
    if (paren != std::string::npos) {
      unsigned long long flags = 0;
      if (std::sscanf(stat->c_str() + paren + 1, " %*c %*d %*d %*d %*d %*d %llu", &flags) == 1 &&
          (flags & 0x00200000ull))
        return Error::make(ErrorCode::PermissionDenied, prefix + "it is a kernel thread");
    }
  }
  const bool privileged = ::geteuid() == 0 || hasPtraceCapability();
  if (auto scope = readProcFile("/proc/sys/kernel/yama/ptrace_scope", 64)) {
    const int value = std::atoi(scope->c_str());
    if (value == 3)
      return Error::make(ErrorCode::PermissionDenied,
                         prefix + "kernel.yama.ptrace_scope is 3 (ptrace disabled)");
    if (value >= 1 && !privileged)
      return Error::make(ErrorCode::PermissionDenied, prefix + "kernel.yama.ptrace_scope is " +
                                                          std::to_string(value) +
                                                          ": run as root or with CAP_SYS_PTRACE");
  }
  if (!privileged) {
    struct stat info {};
    const std::string proc_dir = "/proc/" + std::to_string(pid_);
    if (::stat(proc_dir.c_str(), &info) == 0 && info.st_uid != ::getuid())
      return Error::make(ErrorCode::PermissionDenied,
                         prefix + "it runs as uid " + std::to_string(info.st_uid) +
                             " and the capturer as uid " + std::to_string(::getuid()) +
                             ": run as root or with CAP_SYS_PTRACE");
    return Error::make(ErrorCode::PermissionDenied,
                       prefix +
                           "not permitted (not root, no CAP_SYS_PTRACE, target not "
                           "dumpable?): " +
                           std::strerror(seize_errno));
  }
  return Error::make(
      ErrorCode::PermissionDenied,
      prefix + "refused by the kernel (a security module?): " + std::strerror(seize_errno));
}

FrozenProcess::~FrozenProcess() {
  (void)thaw(); // deliberately ignored: a destructor cannot report, and thaw never throws
}

std::vector<uint64_t> FrozenProcess::stackPointers() const {
  std::vector<uint64_t> pointers;
  for (const ThreadRecord& thread : threads_)
    if (thread.sp != 0)
      pointers.push_back(thread.sp);
  return pointers;
}

std::optional<pid_t> FrozenProcess::interruptStoppedThread() const {
  std::optional<pid_t> found;
  for (const Tracee& tracee : tracees_) {
    if (tracee.tid == 0 || !tracee.stopped || !tracee.interrupt_stop || tracee.pending_signal)
      continue;
    if (tracee.tid == pid_)
      return tracee.tid;
    if (!found)
      found = tracee.tid;
  }
  return found;
}

Result<void> FrozenProcess::thaw() {
  if (!frozen_)
    return success();
  std::string failures;
  for (Tracee& tracee : tracees_) {
    if (tracee.tid == 0)
      continue;
    // emergencyThawAll() detached it already (it clears the slot first).
    if (tracee.emergency_slot >= 0 &&
        g_emergency_tids[tracee.emergency_slot].load() != tracee.tid) {
      tracee.emergency_slot = -1;
      continue;
    }
    // A thread seized but not yet reported stopped cannot be detached until it stops; give it
    // a short bounded wait (it was interrupted, so it stops as soon as it can).
    if (!tracee.stopped) {
      const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(500);
      (void)waitForStop(tracee, deadline); // deliberately ignored: detach reports failure
      if (tracee.tid == 0)
        continue;
    }
    if (ptraceCall(PTRACE_DETACH, tracee.tid, nullptr,
                   reinterpret_cast<void*>(static_cast<uintptr_t>(tracee.pending_signal))) != 0) {
      const int err = errno;
      const std::string state = threadState(pid_, tracee.tid);
      // ESRCH from a thread that is gone (or a zombie) is success: nothing is left stopped.
      if (!(err == ESRCH && (state.empty() || state == "Z" || state == "X"))) {
        if (!failures.empty())
          failures += ", ";
        failures += std::to_string(tracee.tid) + " (" + std::strerror(err) + ")";
      }
    }
    releaseEmergencySlot(tracee.emergency_slot);
    tracee.emergency_slot = -1;
  }
  tracees_.clear();
  frozen_ = false;
  thawed_at_ = Clock::now();
  if (!failures.empty())
    return Error::make(ErrorCode::Generic, "cannot detach from threads of " + std::to_string(pid_) +
                                               ": " + failures +
                                               "; they resume when procsnap-capture exits");
  return success();
}

double FrozenProcess::pauseSeconds() const {
  if (first_stop_ == Clock::time_point{})
    return 0;
  const Clock::time_point end = frozen_ ? Clock::now() : thawed_at_;
  return std::chrono::duration<double>(end - first_stop_).count();
}

} // namespace procsnap
