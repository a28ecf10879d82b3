#include "capture/cow_child.h"

#include "capture/capture_policy.h"
#include "capture/ptrace_calls.h"
#include "capture/signal_guard.h"
#include "common/proc/files.h"
#include "common/proc/status.h"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <sched.h>
#include <sstream>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

namespace procsnap {

namespace {

std::atomic<pid_t> g_cow_child{0};

// The child's stack pointer: below mmap_min_addr, so the child faults on its first stack
// access should it ever run the target's code (it is parked on exit_group before that).
constexpr uint64_t kUnusableStack = 0x10;
// Bound on the child's first stop and on its death after SIGKILL.
constexpr auto kChildTimeout = std::chrono::seconds(10);

ino_t pidNamespace(const std::string& proc_dir) {
  struct stat info {};
  return ::stat((proc_dir + "/ns/pid").c_str(), &info) == 0 ? info.st_ino : 0;
}

// The last NSpid of a process: its pid in the innermost namespace.
pid_t innermostPid(pid_t pid) {
  auto text = readProcFile(procPath(pid, "status"), 1u << 16);
  if (!text)
    return 0;
  const size_t at = text->find("\nNSpid:");
  if (at == std::string::npos)
    return pid;
  std::istringstream line(text->substr(at + 7, text->find('\n', at + 1) - at - 7));
  pid_t last = 0;
  for (pid_t value; line >> value;)
    last = value;
  return last;
}

// The pid, in our namespace, of the child that thread tid of pid created as ns_pid.
Result<pid_t> childInOurNamespace(pid_t pid, pid_t tid, pid_t ns_pid) {
  if (pidNamespace("/proc/self") == pidNamespace(procPath(pid, "")))
    return ns_pid;
  auto children = readProcFile(procPath(pid, "task/" + std::to_string(tid) + "/children"));
  if (children) {
    std::istringstream list(*children);
    for (pid_t child; list >> child;)
      if (innermostPid(child) == ns_pid)
        return child;
  }
  return Error::make(ErrorCode::Generic, "cannot find the forked child " + std::to_string(ns_pid) +
                                             " of " + std::to_string(pid) +
                                             " in the capturer's pid namespace");
}

// Sets or clears one VmFlags mnemonic.
void setVmFlag(SmapsEntry& smaps, std::string_view flag, bool on) {
  std::erase(smaps.vm_flags, flag);
  if (on)
    smaps.vm_flags.emplace_back(flag);
}

} // namespace

bool needsFrozenCopy(const RegionRecord& region) {
  return region.map().perms.shared || region.smaps.hasVmFlag("dc") || region.smaps.hasVmFlag("wf");
}

std::optional<std::string> cowObstacle(pid_t pid) {
  if (auto obstacle = injectionObstacle(pid))
    return obstacle;
  if (pidNamespace("/proc/self") != pidNamespace(procPath(pid, "")) &&
      ::access(procPath(pid, "task/" + std::to_string(pid) + "/children").c_str(), R_OK) != 0)
    return std::string("it is in another pid namespace and this kernel has no "
                       "/proc/PID/task/TID/children to find the forked child");
  return std::nullopt;
}

Result<std::unique_ptr<CowChild>> CowChild::fork(FrozenProcess& frozen,
                                                 const SyscallGadget& gadget) {
#if !defined(__x86_64__)
  (void)frozen;
  (void)gadget;
  return Error::make(ErrorCode::Unsupported, "--cow is only built for x86-64");
#else
  const std::optional<pid_t> tid = frozen.interruptStoppedThread();
  if (!tid)
    return Error::make(ErrorCode::Generic,
                       "no thread of " + std::to_string(frozen.pid()) +
                           " is in an interrupt stop (all were stopped by signals)");
  // Exit signal 0 (the low byte): the target gets no SIGCHLD and its plain wait() calls do not
  // see the child. CLONE_FILES: no second reference to its files, so a close in the target
  // takes effect at once. CLONE_PTRACE: traced by us from birth, stopped before user code.
  constexpr uint64_t kFlags = CLONE_PTRACE | CLONE_FILES;
  // SIGINT/SIGTERM/SIGHUP wait until the thread has its registers back and the child is
  // parked (a handler that detached the thread now would resume it on borrowed registers).
  SignalGuard::Deferral deferral;
  auto call = injectSyscall(*tid, gadget, SYS_clone, {kFlags, kUnusableStack, 0, 0, 0, 0});
  if (!call)
    return std::move(call).takeError();
  resendHeldSignals(frozen.pid(), *tid, call->held_signals);
  if (call->result < 0)
    return Error::make(ErrorCode::Generic,
                       "the target's clone failed: " +
                           std::string(std::strerror(static_cast<int>(-call->result))));

  std::unique_ptr<CowChild> child(new CowChild());
  child->target_pid_ = frozen.pid();
  child->target_ns_pid_ = static_cast<pid_t>(call->result);
  child->gadget_ = gadget;
  auto found = childInOurNamespace(frozen.pid(), *tid, child->target_ns_pid_);
  if (!found) {
    // It exists but we cannot name it: it is our tracee, so it dies with us (no EXITKILL yet,
    // but its stack is unusable). Report the error; the capture falls back to copying frozen.
    return std::move(found).takeError();
  }
  child->pid_ = *found;
  g_cow_child.store(child->pid_);

  auto first = waitStatusWithin(child->pid_, kChildTimeout);
  if (!first)
    return std::move(first).takeError(); // the destructor kills it
  // Killed with us if we die; and parked on exit_group(0) should anything resume it.
  (void)ptraceCall(PTRACE_SETOPTIONS, child->pid_, nullptr,
                   reinterpret_cast<void*>(uintptr_t{PTRACE_O_EXITKILL}));
  user_regs_struct regs{};
  if (ptraceCall(PTRACE_GETREGS, child->pid_, nullptr, &regs) == 0) {
    regs.rip = gadget.address;
    regs.rax = SYS_exit_group;
    regs.orig_rax = ~uint64_t{0};
    regs.rdi = 0;
    (void)ptraceCall(PTRACE_SETREGS, child->pid_, nullptr, &regs);
  }
  return child;
#endif
}

void CowChild::kill() noexcept {
  if (killed_ || pid_ <= 0)
    return;
  killed_ = true;
  ::kill(pid_, SIGKILL);
  // Reap it as its tracer, so that it becomes the target's zombie (reaped in release()).
  for (int i = 0; i < 3; ++i) {
    auto status = waitStatusWithin(pid_, kChildTimeout);
    if (!status || WIFEXITED(*status) || WIFSIGNALED(*status))
      break;
  }
  g_cow_child.store(0);
}

CowChild::~CowChild() {
  if (!released_)
    (void)release(); // deliberately ignored: an error path is already being reported
}

Result<double> CowChild::release() {
  released_ = true;
  SignalGuard::Deferral deferral; // the target is stopped again below: finish, then die
  kill();
#if defined(__x86_64__)
  auto frozen = FrozenProcess::freeze(target_pid_);
  if (!frozen)
    return std::move(frozen).takeError();
  const std::optional<pid_t> tid = (*frozen)->interruptStoppedThread();
  if (!tid) {
    (void)(*frozen)->thaw();
    return Error::make(ErrorCode::Generic, "cannot reap the forked child " +
                                               std::to_string(target_ns_pid_) +
                                               ": no thread of the target is in an interrupt stop");
  }
  constexpr uint64_t kPidType = 1; // P_PID
  // infop NULL is allowed; WNOHANG: never block the target, the zombie is there already.
  auto call = injectSyscall(
      *tid, gadget_, SYS_waitid,
      {kPidType, static_cast<uint64_t>(target_ns_pid_), 0, WEXITED | WNOHANG | __WALL, 0, 0});
  if (call)
    resendHeldSignals(target_pid_, *tid, call->held_signals);
  auto thawed = (*frozen)->thaw();
  const double pause = (*frozen)->pauseSeconds();
  if (!call)
    return std::move(call).takeError();
  if (!thawed)
    return std::move(thawed).takeError();
  // ECHILD: the target reaped it itself (a wait with __WALL).
  if (call->result < 0 && call->result != -ECHILD)
    return Error::make(ErrorCode::Generic, "cannot reap the forked child " +
                                               std::to_string(target_ns_pid_) + ": " +
                                               std::strerror(static_cast<int>(-call->result)));
  return pause;
#else
  return 0.0;
#endif
}

std::vector<char> presentIn(const std::vector<RegionRecord>& regions,
                            const std::vector<MapsEntry>& fork_maps) {
  std::vector<char> present(regions.size(), 0);
  for (size_t i = 0; i < regions.size(); ++i)
    present[i] = findIdenticalMapping(
                     fork_maps, regions[i].map(),
                     [](const MapsEntry& map) -> const MapsEntry& { return map; }) != nullptr;
  return present;
}

void reconcileWithFork(std::vector<RegionRecord>& regions, const std::vector<char>& smaps_known,
                       const std::vector<char>& in_fork, const std::vector<SmapsEntry>& fork_smaps,
                       const CapturePolicy& policy, std::vector<char>& copy_region,
                       const std::function<void(uint64_t, uint64_t)>& discard) {
  for (size_t i = 0; i < regions.size(); ++i) {
    RegionRecord& region = regions[i];
    const SmapsEntry* found =
        in_fork[i] ? findIdenticalMapping(
                         fork_smaps, region.map(),
                         [](const SmapsEntry& entry) -> const MapsEntry& { return entry.map; })
                   : nullptr;
    if (!found)
      continue; // not in the fork (MADV_DONTFORK): what was read before the freeze stands
    const SmapsEntry& at_fork = *found;
    if (!smaps_known[i]) {
      // Rss and the like as the fork counts them: the nearest figures there are.
      region.smaps.fields = at_fork.fields;
      region.smaps.vm_flags = at_fork.vm_flags;
    } else {
      setVmFlag(region.smaps, "dd", at_fork.hasVmFlag("dd"));
    }
    const std::optional<PageState> exclusion = regionExclusion(region, policy);
    switch (copy_region[i]) {
    case kCopyFromFork:
      if (exclusion) {
        markWholeRegion(region, *exclusion);
        copy_region[i] = kSkip;
      } else if (at_fork.hasVmFlag("wf")) {
        markWholeRegion(region, PageState::Unreadable);
        region.note = "MADV_WIPEONFORK was set during the capture: the fork holds zeros";
        copy_region[i] = kSkip;
      }
      break;
    case kCopyFrozen:
      if (exclusion) {
        discard(region.map().start, region.map().end);
        markWholeRegion(region, *exclusion);
        copy_region[i] = kSkip;
      }
      break;
    default: // kSkip
      if (!exclusion && !region.map().perms.shared && !at_fork.hasVmFlag("wf")) {
        region.pages.clear();
        copy_region[i] = kCopyFromFork;
      }
      break;
    }
  }
}

void emergencyKillCowChild() noexcept {
  const pid_t pid = g_cow_child.exchange(0);
  if (pid > 0)
    ::kill(pid, SIGKILL);
}

} // namespace procsnap
