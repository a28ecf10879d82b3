#include "capture/write_tracker.h"

#include "capture/pagemap_scan.h"
#include "capture/signal_guard.h"
#include "common/proc/files.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

namespace procsnap {

namespace {

// Missing from Debian 12's linux-libc-dev 6.1 (include/uapi/linux/userfaultfd.h).
constexpr uint64_t kFeatureWpAsync = 1ull << 15; // Linux 6.7
// userfaultfd(2) flag: faults from user space only, which needs no privilege even with
// vm.unprivileged_userfaultfd = 0 (and asynchronous write-protection never delivers faults).
constexpr uint64_t kUffdUserModeOnly = 1;
// page_region entries per PAGEMAP_SCAN call; the walk continues from walk_end.
constexpr size_t kScanVectorLength = 4096;
// Write-protecting and unregistering walk the target's page tables holding its mm's lock: both
// go by pieces of 2 MiB (512 pages, well under a millisecond each), with a breath between.
constexpr uint64_t kArmPieceBytes = 2ull << 20;
constexpr uint64_t kUnregisterPieceBytes = 2ull << 20;
constexpr long kBreathNs = 200'000;

// Between two pieces of page-table work on the target's memory, so that its threads get a
// turn (back to back, a thread of the target stalled for the whole 150-300 ms walk).
void breathe() {
  timespec pause{0, kBreathNs};
  ::nanosleep(&pause, nullptr);
}

Error systemError(const std::string& what) {
  const int err = errno;
  if (err == ESRCH)
    return Error::make(ErrorCode::ProcessGone, what + ": the process exited");
  return Error::make(ErrorCode::Generic, what + ": " + std::strerror(err));
}

} // namespace

Result<std::unique_ptr<WriteTracker>>
WriteTracker::create(FrozenProcess& frozen, const SyscallGadget& gadget,
                     const std::vector<RegionRecord>& regions) {
#if !defined(__x86_64__)
  (void)frozen;
  (void)gadget;
  (void)regions;
  return Error::make(ErrorCode::Unsupported, "--precopy is only built for x86-64");
#else
  const pid_t pid = frozen.pid();
  const std::optional<pid_t> tid = frozen.interruptStoppedThread();
  if (!tid)
    return Error::make(ErrorCode::Generic,
                       "no thread of " + std::to_string(pid) +
                           " is in an interrupt stop (all were stopped by signals)");
  // As for the --cow clone: a handler must not detach a thread running borrowed registers.
  SignalGuard::Deferral deferral;
  auto created = injectSyscall(*tid, gadget, SYS_userfaultfd,
                               {O_CLOEXEC | O_NONBLOCK | kUffdUserModeOnly, 0, 0, 0, 0, 0});
  if (!created)
    return std::move(created).takeError();
  resendHeldSignals(pid, *tid, created->held_signals);
  if (created->result < 0)
    return Error::make(ErrorCode::Unsupported,
                       "the target cannot create a userfaultfd: " +
                           std::string(std::strerror(static_cast<int>(-created->result))));
  const uint64_t target_fd = static_cast<uint64_t>(created->result);

  std::unique_ptr<WriteTracker> tracker(new WriteTracker());
  tracker->pid_ = pid;
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd >= 0) {
    tracker->uffd_ = static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd, target_fd, 0));
    ::close(pidfd);
  }
  const int getfd_errno = errno;
  // The target's descriptor goes at once, whatever happened: ours is the only one left.
  auto closed = injectSyscall(*tid, gadget, SYS_close, {target_fd, 0, 0, 0, 0, 0});
  if (closed)
    resendHeldSignals(pid, *tid, closed->held_signals);
  if (tracker->uffd_ < 0) {
    errno = getfd_errno;
    return systemError("cannot take the target's userfaultfd (pidfd_getfd)");
  }
  if (!closed)
    return std::move(closed).takeError();

  uffdio_api api{};
  api.api = UFFD_API;
  // Not UFFD_FEATURE_WP_UNPOPULATED: it would fill the page tables of untouched memory (a
  // 32 GiB reservation exhausted this 24 GiB machine) to mark what needs no mark: a page first
  // faulted in after arm() carries no protection, so it reads as written anyway.
  api.features = kFeatureWpAsync;
  if (::ioctl(tracker->uffd_, UFFDIO_API, &api) != 0)
    return Error::make(ErrorCode::Unsupported,
                       "this kernel has no asynchronous userfaultfd write-protection (Linux 6.7)");

  for (const RegionRecord& region : regions) {
    const MapsEntry& map = region.map();
    // Shared mappings change under other processes' writes; [vvar] and [vsyscall] are the
    // kernel's.
    if (map.perms.shared || map.path == "[vvar]" || map.path == "[vvar_vclock]" ||
        map.path == "[vsyscall]" || map.end <= map.start)
      continue;
    // Nothing resident, nothing to copy ahead (a reservation of tens of GiB): it is copied
    // frozen, and its registration would only cost a page-table walk when removed.
    if (auto rss_kb = region.smaps.field("Rss"); rss_kb && *rss_kb == 0)
      continue;
    uffdio_register reg{};
    reg.range.start = map.start;
    reg.range.len = map.end - map.start;
    reg.mode = UFFDIO_REGISTER_MODE_WP;
    // A region the kernel refuses (another userfaultfd, VM_PFNMAP, ...) is copied frozen.
    if (::ioctl(tracker->uffd_, UFFDIO_REGISTER, &reg) == 0)
      tracker->tracked_.push_back(map);
  }
  tracker->pagemap_fd_ = ::open(procPath(pid, "pagemap").c_str(), O_RDONLY | O_CLOEXEC);
  if (tracker->pagemap_fd_ < 0)
    return systemError("cannot open /proc/" + std::to_string(pid) + "/pagemap");
  return tracker;
#endif
}

WriteTracker::~WriteTracker() {
  if (uffd_ >= 0) {
    // Unregistering clears the protection of every page left (about 150 ns per page here),
    // piece by piece (see breathe()). The pieces split the mapping for a moment; unregistering
    // the next one merges it back.
    for (const MapsEntry& map : tracked_) {
      for (uint64_t at = map.start; at < map.end; at += kUnregisterPieceBytes) {
        uffdio_range range{at, std::min(kUnregisterPieceBytes, map.end - at)};
        if (::ioctl(uffd_, UFFDIO_UNREGISTER, &range) != 0)
          break; // the mapping changed: closing the descriptor unregisters the rest
        breathe();
      }
    }
    ::close(uffd_);
  }
  if (pagemap_fd_ >= 0)
    ::close(pagemap_fd_);
}

Result<void> WriteTracker::arm() {
  std::vector<kernel::page_region> vector(kScanVectorLength);
  for (const MapsEntry& map : tracked_) {
    for (uint64_t at = map.start; at < map.end;) {
      kernel::pm_scan_arg arg{};
      arg.size = sizeof arg;
      arg.flags = kernel::PM_SCAN_WP_MATCHING | kernel::PM_SCAN_CHECK_WPASYNC;
      arg.start = at;
      arg.end = std::min(map.end, at + kArmPieceBytes);
      arg.vec = reinterpret_cast<uint64_t>(vector.data());
      arg.vec_len = vector.size();
      // Present pages only: protecting a hole installs a PTE marker, which pagemap reports
      // as swapped out, so the copier would read (and allocate) untouched memory. A hole
      // filled in later carries no protection, so it reads as written anyway.
      arg.category_mask = kernel::PAGE_IS_PRESENT;
      arg.return_mask = kernel::PAGE_IS_PRESENT;
      if (::ioctl(pagemap_fd_, kernel::PAGEMAP_SCAN, &arg) < 0)
        return systemError("cannot write-protect the target's pages (PAGEMAP_SCAN)");
      if (arg.walk_end <= at)
        return Error::make(ErrorCode::Generic, "PAGEMAP_SCAN made no progress");
      at = arg.walk_end;
      breathe();
    }
  }
  return success();
}

bool WriteTracker::tracks(const MapsEntry& map) const {
  return findIdenticalMapping(tracked_, map, [](const MapsEntry& entry) -> const MapsEntry& {
           return entry;
         }) != nullptr;
}

uint64_t WriteTracker::trackedBytes() const {
  uint64_t total = 0;
  for (const MapsEntry& map : tracked_)
    total += map.end - map.start;
  return total;
}

Result<std::vector<AddressRange>> WriteTracker::writtenRanges(uint64_t start, uint64_t end) {
  std::vector<AddressRange> ranges;
  std::vector<kernel::page_region> vector(kScanVectorLength);
  for (uint64_t at = start; at < end;) {
    kernel::pm_scan_arg arg{};
    arg.size = sizeof arg;
    arg.start = at;
    arg.end = end;
    arg.vec = reinterpret_cast<uint64_t>(vector.data());
    arg.vec_len = vector.size();
    arg.category_mask = kernel::PAGE_IS_WRITTEN;
    arg.return_mask = kernel::PAGE_IS_WRITTEN;
    const long found = ::ioctl(pagemap_fd_, kernel::PAGEMAP_SCAN, &arg);
    if (found < 0)
      return systemError("cannot scan the target's written pages (PAGEMAP_SCAN)");
    for (long i = 0; i < found; ++i) {
      const kernel::page_region& region = vector[static_cast<size_t>(i)];
      if (!ranges.empty() && ranges.back().end == region.start)
        ranges.back().end = region.end;
      else
        ranges.push_back(AddressRange{region.start, region.end});
    }
    if (arg.walk_end <= at)
      return Error::make(ErrorCode::Generic, "PAGEMAP_SCAN made no progress");
    at = arg.walk_end;
  }
  return ranges;
}

} // namespace procsnap
