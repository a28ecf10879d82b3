// A copy-on-write image of a frozen target, so that it can be thawed before its memory is
// copied (capture --cow). An injected clone() makes the target fork a child that shares its
// file table, sends it no signal when it dies (exit signal 0: invisible to wait() without
// __WALL), and is traced by us from birth, so it stops before running any instruction. The
// child's memory is the target's at the moment of the clone; the target then runs on, paying
// one page copy for each page it writes while the child lives.
//
// What the child does not have: MADV_DONTFORK regions ("dc" in VmFlags) are absent from it,
// MADV_WIPEONFORK ones ("wf") read as zero, and shared mappings change with the target.
// Those are copied from the target while it is frozen (needsFrozenCopy).
//
// The child never runs the target's code: it is parked on exit_group(0) and carries
// PTRACE_O_EXITKILL, so if the capturer dies it is killed (or exits) at once. release() kills
// it and then reaps its zombie from inside the target (a second, brief freeze and an injected
// waitid), so nothing is left behind.
#pragma once

#include "capture/capture_policy.h"
#include "capture/frozen_process.h"
#include "capture/syscall_injection.h"
#include "common/model/snapshot_metadata.h"
#include "common/util/result.h"

#include <functional>
#include <memory>
#include <sys/types.h>
#include <vector>

namespace procsnap {

// Whether a region must be copied from the frozen target rather than from the child.
bool needsFrozenCopy(const RegionRecord& region);

// For each region, whether fork_maps (sorted, the fork's /proc/PID/maps) has an identical
// mapping: MADV_DONTFORK regions are missing from the fork, so they must be copied frozen.
std::vector<char> presentIn(const std::vector<RegionRecord>& regions,
                            const std::vector<MapsEntry>& fork_maps);

// After the thaw: the fork's smaps hold the VmFlags exactly as they were at the fork, while
// the regions carry those of an smaps read just before the freeze (smaps_known[i] = 0 where
// the mapping changed in between and nothing is known). Per region present in the fork:
// - a region not known before takes the fork's smaps (fields and flags);
// - MADV_DONTDUMP follows the fork: a region that must now be left out is marked so and, if
//   it was copied frozen, its chunks dropped through discard(start, end); one left out on a
//   stale flag is copied from the fork after all (unless shared);
// - one that became MADV_WIPEONFORK (its fork holds zeros) is marked Unreadable with a note.
// copy_region (CopySource per region) is updated to match.
void reconcileWithFork(std::vector<RegionRecord>& regions, const std::vector<char>& smaps_known,
                       const std::vector<char>& in_fork, const std::vector<SmapsEntry>& fork_smaps,
                       const CapturePolicy& policy, std::vector<char>& copy_region,
                       const std::function<void(uint64_t, uint64_t)>& discard);

// Why --cow cannot be used on this target, or nullopt when it can: seccomp (an injected
// clone could kill a filtered process), a 32-bit process, another architecture.
std::optional<std::string> cowObstacle(pid_t pid);

class CowChild final {
public:
  // Forks the child from one of frozen's interrupt-stopped threads. On error no child exists.
  static Result<std::unique_ptr<CowChild>> fork(FrozenProcess& frozen, const SyscallGadget& gadget);

  ~CowChild(); // release() unless done (errors ignored)
  CowChild(const CowChild&) = delete;
  CowChild& operator=(const CowChild&) = delete;

  pid_t pid() const { return pid_; } // in the capturer's pid namespace

  // Kills the child and reaps it inside the target, which must not be frozen by anyone else
  // then. Returns how long the target was stopped for the reaping (seconds); ProcessGone when
  // the target exited (nothing left to reap). Once only.
  Result<double> release();

private:
  CowChild() = default;
  void kill() noexcept;

  pid_t target_pid_ = 0;
  pid_t pid_ = 0;           // our namespace
  pid_t target_ns_pid_ = 0; // as the target knows it (the clone's return value)
  SyscallGadget gadget_;
  bool killed_ = false;
  bool released_ = false;
};

// Async-signal-safe: SIGKILLs the live COW child, if any (for the capturer's signal handlers).
void emergencyKillCowChild() noexcept;

} // namespace procsnap
