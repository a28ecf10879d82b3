#include "capture/cow_child.h"

#include "capture/frozen_process.h"
#include "capture/process_inspector.h"
#include "capture/syscall_injection.h"
#include "tests/capture/forked_target.h"
#include "tests/support/proc_children.h"
#include "tests/support/sample_process.h"

#include <gtest/gtest.h>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <vector>

namespace procsnap {
namespace {

using test::ForkedTarget;

// The pids of the children of pid, zombies included.
std::vector<pid_t> childPids(pid_t pid) {
  std::vector<pid_t> pids;
  for (const test::ChildProcess& child : test::childrenOf(pid))
    pids.push_back(child.pid);
  return pids;
}

std::vector<std::byte> readRemote(pid_t pid, uint64_t address, size_t size) {
  std::vector<std::byte> bytes(size);
  iovec local{bytes.data(), size};
  iovec remote{reinterpret_cast<void*>(address), size};
  if (process_vm_readv(pid, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(size))
    bytes.clear();
  return bytes;
}

TEST(CowChildTest, ForkedChildHoldsTheMemoryAndLeavesNothingBehind) {
  auto target = ForkedTarget::start({.sleeping_threads = 1, .spinning_threads = 1});
  ASSERT_TRUE(target);
  const pid_t pid = target->pid();
  ASSERT_EQ(cowObstacle(pid), std::nullopt);

  auto frozen = FrozenProcess::freeze(pid);
  ASSERT_TRUE(frozen.ok()) << frozen.error().message;
  auto regions = readRegions(pid, (*frozen)->stackPointers());
  ASSERT_TRUE(regions.ok()) << regions.error().message;
  auto gadget = findSyscallGadget(pid, *regions);
  ASSERT_TRUE(gadget.ok()) << gadget.error().message;

  auto child = CowChild::fork(**frozen, *gadget);
  ASSERT_TRUE(child.ok()) << child.error().message;
  const pid_t child_pid = (*child)->pid();
  EXPECT_NE(child_pid, pid);
  EXPECT_EQ(test::statusField(child_pid, "PPid"), std::to_string(pid));
  EXPECT_EQ(test::statusField(child_pid, "TracerPid"), std::to_string(getpid()));
  EXPECT_EQ(test::statusField(child_pid, "State").substr(0, 1), "t");
  ASSERT_TRUE((*frozen)->thaw().ok());

  // The target runs on, untraced, while the child still holds the frozen image.
  EXPECT_EQ(test::statusField(pid, "TracerPid"), "0");
  const uint64_t size = target->layout().pattern_size;
  std::vector<std::byte> image = readRemote(child_pid, target->layout().pattern, size);
  ASSERT_EQ(image.size(), size);
  for (uint64_t offset = 0; offset < size; offset += 4093)
    ASSERT_EQ(image[offset], test::patternByte(offset)) << offset;
  // Nothing reached the target: it got no SIGCHLD-driven change and has exactly one child.
  EXPECT_EQ(childPids(pid), std::vector<pid_t>{child_pid});

  auto pause = (*child)->release();
  ASSERT_TRUE(pause.ok()) << pause.error().message;
  EXPECT_GT(*pause, 0.0);
  EXPECT_LT(*pause, 1.0);
  // Reaped inside the target: no zombie, no child at all.
  EXPECT_TRUE(childPids(pid).empty());
  EXPECT_EQ(test::statusField(pid, "TracerPid"), "0");
  EXPECT_NE(test::statusField(pid, "State").substr(0, 1), "t");
}

TEST(CowChildTest, RepeatedForksOfAThreadSpawningTargetStayClean) {
  auto target = ForkedTarget::start({.sleeping_threads = 2, .spawn_threads = true});
  ASSERT_TRUE(target);
  const pid_t pid = target->pid();
  for (int round = 0; round < 10; ++round) {
    SCOPED_TRACE(round);
    auto frozen = FrozenProcess::freeze(pid);
    ASSERT_TRUE(frozen.ok()) << frozen.error().message;
    auto regions = readRegions(pid, (*frozen)->stackPointers());
    ASSERT_TRUE(regions.ok()) << regions.error().message;
    auto gadget = findSyscallGadget(pid, *regions);
    ASSERT_TRUE(gadget.ok()) << gadget.error().message;
    auto child = CowChild::fork(**frozen, *gadget);
    ASSERT_TRUE(child.ok()) << child.error().message;
    ASSERT_TRUE((*frozen)->thaw().ok());
    auto pause = (*child)->release();
    ASSERT_TRUE(pause.ok()) << pause.error().message;
    EXPECT_TRUE(childPids(pid).empty());
  }
  // Still alive, running and untraced.
  EXPECT_EQ(test::statusField(pid, "TracerPid"), "0");
  EXPECT_EQ(kill(pid, 0), 0);
}

// A process whose threads sit in three kinds of interrupted system calls: read() on a pipe
// (restarted after ERESTARTSYS), nanosleep() (restart_syscall after ERESTART_RESTARTBLOCK)
// and pause() (ERESTARTNOHAND). The reader echoes the byte it gets, or 'E' when read()
// failed; the sleeper writes 'S' if nanosleep() ever fails. Injection must change none of it.
struct BlockedTarget {
  pid_t pid = -1;
  int to_child = -1;
  int from_child = -1;
  ~BlockedTarget() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    close(to_child);
    close(from_child);
  }
};

int g_in = -1, g_out = -1;

void* readerThread(void*) {
  char byte = 0;
  const ssize_t n = read(g_in, &byte, 1);
  const char reply = n == 1 ? byte : 'E';
  (void)!write(g_out, &reply, 1);
  return nullptr;
}

void* sleeperThread(void*) {
  for (;;) {
    timespec t{0, 20 * 1000 * 1000};
    if (nanosleep(&t, nullptr) != 0)
      (void)!write(g_out, "S", 1);
  }
  return nullptr;
}

std::unique_ptr<BlockedTarget> startBlockedTarget() {
  int in[2], out[2];
  if (pipe(in) != 0 || pipe(out) != 0)
    return nullptr;
  auto target = std::make_unique<BlockedTarget>();
  target->pid = fork();
  if (target->pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    g_in = in[0];
    g_out = out[1];
    pthread_t reader, sleeper;
    pthread_create(&reader, nullptr, readerThread, nullptr);
    pthread_create(&sleeper, nullptr, sleeperThread, nullptr);
    for (;;)
      pause();
  }
  close(in[0]);
  close(out[1]);
  target->to_child = in[1];
  target->from_child = out[0];
  return target;
}

TEST(SyscallInjectionTest, InterruptedSystemCallsRestartAsIfNothingHappened) {
  auto target = startBlockedTarget();
  ASSERT_TRUE(target && target->pid > 0);
  // Let every thread block in its call.
  ASSERT_TRUE(test::waitUntil(
      [&] {
        DIR* dir = opendir(("/proc/" + std::to_string(target->pid) + "/task").c_str());
        int sleeping = 0;
        while (const dirent* entry = dir ? readdir(dir) : nullptr)
          if (entry->d_name[0] != '.')
            sleeping += test::threadStateLetter(target->pid, std::atoi(entry->d_name)) == 'S';
        if (dir)
          closedir(dir);
        return sleeping == 3;
      },
      2000));
  usleep(50 * 1000);

  for (int round = 0; round < 5; ++round) {
    auto frozen = FrozenProcess::freeze(target->pid);
    ASSERT_TRUE(frozen.ok()) << frozen.error().message;
    auto regions = readRegions(target->pid, (*frozen)->stackPointers());
    ASSERT_TRUE(regions.ok());
    auto gadget = findSyscallGadget(target->pid, *regions);
    ASSERT_TRUE(gadget.ok()) << gadget.error().message;
    ASSERT_EQ((*frozen)->threads().size(), 3u);
    for (const ThreadRecord& thread : (*frozen)->threads()) {
      auto call = injectSyscall(thread.tid, *gadget, SYS_gettid, {});
      ASSERT_TRUE(call.ok()) << call.error().message;
      EXPECT_EQ(call->result, thread.tid); // ran in that thread
    }
    ASSERT_TRUE((*frozen)->thaw().ok());
    usleep(30 * 1000);
  }
  // The reader is still blocked in read(), which now returns the byte.
  ASSERT_EQ(write(target->to_child, "x", 1), 1);
  pollfd ready{target->from_child, POLLIN, 0};
  ASSERT_EQ(poll(&ready, 1, 2000), 1);
  char reply = 0;
  ASSERT_EQ(read(target->from_child, &reply, 1), 1);
  EXPECT_EQ(reply, 'x'); // not 'E' (read failed) nor 'S' (nanosleep failed)
  usleep(50 * 1000);
  ready.revents = 0;
  EXPECT_EQ(poll(&ready, 1, 0), 0) << "the sleeper saw nanosleep fail";
}

} // namespace
} // namespace procsnap
