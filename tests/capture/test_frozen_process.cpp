#include "capture/frozen_process.h"

#include "tests/capture/forked_target.h"
#include "tests/support/sample_process.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <csignal>
#include <cstring>
#include <dirent.h>
#include <elf.h>
#include <fstream>
#include <functional>
#include <poll.h>
#include <set>
#include <sys/wait.h>
#include <unistd.h>

namespace procsnap {
namespace {

using test::ForkedTarget;
using test::ForkedTargetOptions;

// Threads stop and resume within microseconds; these bounds only matter on a loaded machine.
constexpr int kResumeTimeoutMs = 1000;

std::vector<pid_t> taskIds(pid_t pid) {
  std::vector<pid_t> tids;
  DIR* dir = opendir(("/proc/" + std::to_string(pid) + "/task").c_str());
  if (dir == nullptr)
    return tids;
  while (const dirent* entry = readdir(dir))
    if (entry->d_name[0] != '.')
      tids.push_back(static_cast<pid_t>(std::stol(entry->d_name)));
  closedir(dir);
  std::sort(tids.begin(), tids.end());
  return tids;
}

// 't' is "tracing stop"; 'T' a group stop.
bool allStopped(pid_t pid) {
  for (pid_t tid : taskIds(pid)) {
    const char state = test::threadStateLetter(pid, tid);
    if (state != 't' && state != 'T' && state != '?')
      return false;
  }
  return true;
}

bool noneStopped(pid_t pid) {
  for (pid_t tid : taskIds(pid)) {
    const char state = test::threadStateLetter(pid, tid);
    if (state == 't' || state == 'T')
      return false;
  }
  return true;
}

bool untraced(pid_t pid) {
  return test::statusField(pid, "TracerPid") == "0";
}

struct Mapping {
  uint64_t start, end;
  bool executable;
};

std::vector<Mapping> readMappings(pid_t pid) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  std::vector<Mapping> result;
  std::string line;
  while (std::getline(maps, line)) {
    Mapping mapping{};
    char perms[5] = {};
    if (std::sscanf(line.c_str(), "%lx-%lx %4s", &mapping.start, &mapping.end, perms) == 3) {
      mapping.executable = perms[2] == 'x';
      result.push_back(mapping);
    }
  }
  return result;
}

bool inside(const std::vector<Mapping>& mappings, uint64_t address, bool need_exec) {
  return std::any_of(mappings.begin(), mappings.end(), [&](const Mapping& m) {
    return address >= m.start && address < m.end && (!need_exec || m.executable);
  });
}

TEST(FrozenProcessTest, FreezesEveryThreadAndThawResumesThem) {
  ForkedTargetOptions options;
  options.sleeping_threads = 3;
  options.spinning_threads = 1;
  auto target = ForkedTarget::start(options);
  ASSERT_TRUE(target);
  const pid_t pid = target->pid();
  ASSERT_TRUE(test::waitUntil([&] { return taskIds(pid).size() == 5; }, kResumeTimeoutMs));

  auto frozen = FrozenProcess::freeze(pid);
  ASSERT_TRUE(frozen.ok()) << frozen.error().message;
  FrozenProcess& process = **frozen;
  EXPECT_TRUE(process.frozen());
  EXPECT_EQ(process.pid(), pid);

  // Every task is stopped and traced by us, and every task is in threads().
  EXPECT_TRUE(allStopped(pid));
  EXPECT_EQ(test::statusField(pid, "TracerPid"), std::to_string(getpid()));
  std::vector<pid_t> frozen_tids;
  for (const ThreadRecord& thread : process.threads())
    frozen_tids.push_back(thread.tid);
  ASSERT_EQ(frozen_tids.size(), 5u);
  EXPECT_EQ(frozen_tids.front(), pid); // main thread first
  std::sort(frozen_tids.begin(), frozen_tids.end());
  EXPECT_EQ(frozen_tids, taskIds(pid));
  for (pid_t tid : taskIds(pid))
    EXPECT_EQ(test::statusField(tid, "TracerPid"), std::to_string(getpid())) << tid;

  // The spinning thread stays put while frozen: its state and registers do not change.
  const double pause_before = process.pauseSeconds();
  EXPECT_GT(pause_before, 0.0);
  usleep(20 * 1000);
  EXPECT_TRUE(allStopped(pid));
  EXPECT_GT(process.pauseSeconds(), pause_before);

  ASSERT_TRUE(process.thaw().ok());
  EXPECT_FALSE(process.frozen());
  EXPECT_TRUE(test::waitUntil([&] { return noneStopped(pid) && untraced(pid); }, kResumeTimeoutMs));
  for (pid_t tid : taskIds(pid))
    EXPECT_EQ(test::statusField(tid, "TracerPid"), "0") << tid;
  // The pause is fixed once thawed, and thaw is idempotent.
  const double pause = process.pauseSeconds();
  EXPECT_GE(pause, 0.02);
  usleep(5 * 1000);
  EXPECT_EQ(process.pauseSeconds(), pause);
  EXPECT_TRUE(process.thaw().ok());
  // The spinning thread really runs again: its CPU time grows.
  auto cpuTicks = [&] {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    unsigned long utime = 0;
    std::sscanf(text.c_str() + text.rfind(')') + 2,
                "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu", &utime);
    return utime;
  };
  const unsigned long ticks = cpuTicks();
  EXPECT_TRUE(test::waitUntil([&] { return cpuTicks() > ticks; }, 2000));
}

TEST(FrozenProcessTest, RegisterSetsAreSane) {
  ForkedTargetOptions options;
  options.sleeping_threads = 2;
  options.spinning_threads = 1;
  auto target = ForkedTarget::start(options);
  ASSERT_TRUE(target);
  ASSERT_TRUE(test::waitUntil([&] { return taskIds(target->pid()).size() == 4; }, 1000));
  auto frozen = FrozenProcess::freeze(target->pid());
  ASSERT_TRUE(frozen.ok()) << frozen.error().message;
  const auto mappings = readMappings(target->pid());
  ASSERT_EQ((*frozen)->threads().size(), 4u);
  for (const ThreadRecord& thread : (*frozen)->threads()) {
    SCOPED_TRACE(thread.tid);
    EXPECT_FALSE(thread.name.empty());
    EXPECT_FALSE(thread.state.empty());
    ASSERT_FALSE(thread.register_sets.empty());
    const RegisterSet& prstatus = thread.register_sets.front();
    EXPECT_EQ(prstatus.note_type, static_cast<uint32_t>(NT_PRSTATUS));
#if defined(__x86_64__)
    EXPECT_EQ(prstatus.bytes.size(), 27u * 8); // user_regs_struct
    uint64_t rip = 0, rsp = 0;
    std::memcpy(&rip, prstatus.bytes.data() + 16 * 8, 8);
    std::memcpy(&rsp, prstatus.bytes.data() + 19 * 8, 8);
    EXPECT_EQ(thread.pc, rip);
    EXPECT_EQ(thread.sp, rsp);
    auto fp = std::find_if(thread.register_sets.begin(), thread.register_sets.end(),
                           [](const RegisterSet& s) { return s.note_type == NT_PRFPREG; });
    ASSERT_NE(fp, thread.register_sets.end());
    EXPECT_EQ(fp->bytes.size(), 512u);
    auto xstate = std::find_if(thread.register_sets.begin(), thread.register_sets.end(),
                               [](const RegisterSet& s) { return s.note_type == NT_X86_XSTATE; });
    ASSERT_NE(xstate, thread.register_sets.end());
    EXPECT_GE(xstate->bytes.size(), 576u); // legacy area + XSAVE header at least
    EXPECT_LT(xstate->bytes.size(), 64u << 10);
#endif
    EXPECT_TRUE(inside(mappings, thread.sp, false)) << std::hex << thread.sp;
    EXPECT_TRUE(inside(mappings, thread.pc, true)) << std::hex << thread.pc;
  }
  const auto pointers = (*frozen)->stackPointers();
  EXPECT_EQ(pointers.size(), 4u);
}

TEST(FrozenProcessTest, DestructorThaws) {
  auto target = ForkedTarget::start({.sleeping_threads = 2});
  ASSERT_TRUE(target);
  {
    auto frozen = FrozenProcess::freeze(target->pid());
    ASSERT_TRUE(frozen.ok()) << frozen.error().message;
    EXPECT_TRUE(allStopped(target->pid()));
  }
  EXPECT_TRUE(test::waitUntil([&] { return noneStopped(target->pid()) && untraced(target->pid()); },
                              kResumeTimeoutMs));
}

TEST(FrozenProcessTest, ThreadSpawningTargetIsFrozenConsistently) {
  auto target = ForkedTarget::start({.sleeping_threads = 1, .spawn_threads = true});
  ASSERT_TRUE(target);
  const pid_t pid = target->pid();
  for (int round = 0; round < 20; ++round) {
    SCOPED_TRACE(round);
    auto frozen = FrozenProcess::freeze(pid);
    ASSERT_TRUE(frozen.ok()) << frozen.error().message;
    // Nothing can start or end a thread while every thread is stopped: the task list is the
    // thread list, and every task is stopped.
    std::vector<pid_t> tids;
    for (const ThreadRecord& thread : (*frozen)->threads())
      tids.push_back(thread.tid);
    EXPECT_EQ(tids.front(), pid);
    std::sort(tids.begin(), tids.end());
    // A thread whose exit had begun is still listed for a moment (state Z or X) but can no
    // longer be traced, so it is not one of the frozen threads.
    std::vector<pid_t> live_tids = taskIds(pid);
    std::erase_if(live_tids, [&](pid_t tid) {
      const char state = test::threadStateLetter(pid, tid);
      return state == 'Z' || state == 'X' || state == '?';
    });
    EXPECT_EQ(tids, live_tids);
    EXPECT_TRUE(allStopped(pid));
    EXPECT_GE(tids.size(), 3u); // main, sleeper, spawner (+ short-lived ones)
    ASSERT_TRUE((*frozen)->thaw().ok());
    EXPECT_TRUE(test::waitUntil([&] { return untraced(pid); }, kResumeTimeoutMs));
  }
  EXPECT_TRUE(test::waitUntil([&] { return noneStopped(pid); }, kResumeTimeoutMs));
}

TEST(FrozenProcessTest, NonexistentPidIsNotFound) {
  auto frozen = FrozenProcess::freeze(INT_MAX);
  ASSERT_FALSE(frozen.ok());
  EXPECT_EQ(frozen.error().code, ErrorCode::NotFound);
  EXPECT_EQ(frozen.error().message, "no such process: " + std::to_string(INT_MAX));
}

TEST(FrozenProcessTest, InvalidPidsAreRejected) {
  EXPECT_EQ(FrozenProcess::freeze(0).error().code, ErrorCode::InvalidArgument);
  EXPECT_EQ(FrozenProcess::freeze(-5).error().code, ErrorCode::InvalidArgument);
  EXPECT_EQ(FrozenProcess::freeze(getpid()).error().code, ErrorCode::InvalidArgument);
}

TEST(FrozenProcessTest, ThreadIdIsNotAProcess) {
  auto target = ForkedTarget::start({.sleeping_threads = 1});
  ASSERT_TRUE(target);
  ASSERT_TRUE(test::waitUntil([&] { return taskIds(target->pid()).size() == 2; }, 1000));
  const pid_t thread = taskIds(target->pid()).back();
  ASSERT_NE(thread, target->pid());
  auto frozen = FrozenProcess::freeze(thread);
  ASSERT_FALSE(frozen.ok());
  EXPECT_EQ(frozen.error().code, ErrorCode::InvalidArgument);
  EXPECT_NE(frozen.error().message.find("is a thread of process"), std::string::npos);
}

TEST(FrozenProcessTest, PidOneIsDeniedWhenNotPermitted) {
  if (geteuid() == 0)
    GTEST_SKIP() << "running as root: pid 1 can be traced";
  auto frozen = FrozenProcess::freeze(1);
  ASSERT_FALSE(frozen.ok());
  EXPECT_EQ(frozen.error().code, ErrorCode::PermissionDenied);
  EXPECT_NE(frozen.error().message.find("cannot freeze 1: "), std::string::npos);
}

// Runs fn in a forked child and returns what it wrote to the pipe (bounded).
std::string inChild(const std::function<std::string()>& fn) {
  int fds[2];
  if (pipe(fds) != 0)
    return "pipe failed";
  const pid_t child = fork();
  if (child == 0) {
    close(fds[0]);
    const std::string text = fn();
    (void)!write(fds[1], text.data(), text.size());
    _exit(0);
  }
  close(fds[1]);
  std::string text;
  char buffer[512];
  ssize_t got;
  while ((got = read(fds[0], buffer, sizeof buffer)) > 0)
    text.append(buffer, static_cast<size_t>(got));
  close(fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  return text;
}

TEST(FrozenProcessTest, AlreadyTracedTargetIsDeniedWithTheTracer) {
  auto target = ForkedTarget::start({});
  ASSERT_TRUE(target);
  auto frozen = FrozenProcess::freeze(target->pid());
  ASSERT_TRUE(frozen.ok()) << frozen.error().message;
  const std::string outcome = inChild([&] {
    auto second = FrozenProcess::freeze(target->pid());
    if (second.ok())
      return std::string("ok");
    return std::to_string(static_cast<int>(second.error().code)) + " " + second.error().message;
  });
  char comm[64] = {};
  std::ifstream("/proc/self/comm").getline(comm, sizeof comm);
  EXPECT_EQ(outcome, std::to_string(static_cast<int>(ErrorCode::PermissionDenied)) +
                         " cannot freeze " + std::to_string(target->pid()) +
                         ": already traced by PID " + std::to_string(getpid()) + " (" + comm + ")");
  // The failed attempt left our freeze alone.
  EXPECT_TRUE(allStopped(target->pid()));
}

TEST(FrozenProcessTest, ExitedTargetGivesProcessGoneOrNotFound) {
  auto target = ForkedTarget::start({});
  ASSERT_TRUE(target);
  const pid_t pid = target->pid();
  ::kill(pid, SIGKILL);
  ASSERT_TRUE(test::waitUntil([&] { return test::threadStateLetter(pid, pid) == 'Z'; }, 2000));
  auto frozen = FrozenProcess::freeze(pid); // a zombie: nothing to stop
  ASSERT_FALSE(frozen.ok());
  EXPECT_EQ(frozen.error().code, ErrorCode::ProcessGone) << frozen.error().message;
  target->kill();
  EXPECT_EQ(FrozenProcess::freeze(pid).error().code, ErrorCode::NotFound);
}

TEST(FrozenProcessTest, EmergencyThawAllDetachesEverything) {
  auto first = ForkedTarget::start({.sleeping_threads = 2});
  auto second = ForkedTarget::start({.spinning_threads = 1});
  ASSERT_TRUE(first && second);
  auto frozen_first = FrozenProcess::freeze(first->pid());
  auto frozen_second = FrozenProcess::freeze(second->pid());
  ASSERT_TRUE(frozen_first.ok() && frozen_second.ok());
  EXPECT_TRUE(allStopped(first->pid()) && allStopped(second->pid()));
  emergencyThawAll();
  for (pid_t pid : {first->pid(), second->pid()})
    EXPECT_TRUE(
        test::waitUntil([&] { return noneStopped(pid) && untraced(pid); }, kResumeTimeoutMs))
        << pid;
  // The owners' own thaw afterwards has nothing left to do and does not fail.
  EXPECT_TRUE((*frozen_first)->thaw().ok());
  EXPECT_TRUE((*frozen_second)->thaw().ok());
}

TEST(FrozenProcessTest, KilledCapturerLeavesTargetRunningAndUntraced) {
  auto target = ForkedTarget::start({.sleeping_threads = 2, .spinning_threads = 1});
  ASSERT_TRUE(target);
  const pid_t pid = target->pid();
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t capturer = fork();
  ASSERT_GE(capturer, 0);
  if (capturer == 0) {
    close(fds[0]);
    auto frozen = FrozenProcess::freeze(pid);
    const char report = frozen.ok() ? 'F' : 'E';
    (void)!write(fds[1], &report, 1);
    for (;;)
      pause(); // blocks, frozen, until SIGKILLed
  }
  close(fds[1]);
  char report = 0;
  pollfd poll_fd{fds[0], POLLIN, 0};
  ASSERT_EQ(poll(&poll_fd, 1, 10000), 1);
  ASSERT_EQ(read(fds[0], &report, 1), 1);
  close(fds[0]);
  ASSERT_EQ(report, 'F');
  EXPECT_TRUE(allStopped(pid));
  EXPECT_EQ(test::statusField(pid, "TracerPid"), std::to_string(capturer));

  ASSERT_EQ(::kill(capturer, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(capturer, &status, 0), capturer);
  EXPECT_TRUE(test::waitUntil([&] { return noneStopped(pid) && untraced(pid); }, kResumeTimeoutMs));
  EXPECT_EQ(test::statusField(pid, "State").substr(0, 1) == "t", false);
}

TEST(FrozenProcessTest, FreezesTheSampleTarget) {
  auto sample = test::SampleProcess::start(test::SampleVariant::Pie);
  ASSERT_TRUE(sample.ok()) << sample.error().message;
  const pid_t pid = (*sample)->pid();
  auto frozen = FrozenProcess::freeze(pid);
  ASSERT_TRUE(frozen.ok()) << frozen.error().message;
  std::set<std::string> names;
  for (const ThreadRecord& thread : (*frozen)->threads())
    names.insert(thread.name);
  EXPECT_EQ((*frozen)->threads().size(), 3u);
  EXPECT_TRUE(names.contains("sample-worker1"));
  EXPECT_TRUE(names.contains("sample-worker2"));
  EXPECT_EQ((*frozen)->threads().front().tid, pid);
  EXPECT_EQ((*sample)->statusField("TracerPid"), std::to_string(getpid()));
  ASSERT_TRUE((*frozen)->thaw().ok());
  EXPECT_TRUE(test::waitUntil([&] { return (*sample)->statusField("TracerPid") == "0"; },
                              kResumeTimeoutMs));
  // The sample still answers after the freeze.
  auto mutated = (*sample)->mutate();
  EXPECT_TRUE(mutated.ok()) << (mutated.ok() ? "" : mutated.error().message);
}

} // namespace
} // namespace procsnap
