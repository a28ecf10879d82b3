#include "capture/capture_session.h"

#include "capture/archive_output.h"
#include "capture/capture_policy.h"
#include "capture/chunk_buffer.h"
#include "capture/cow_child.h"
#include "capture/frozen_process.h"
#include "capture/heap_prefault.h"
#include "capture/memory_copier.h"
#include "capture/module_collector.h"
#include "capture/precopy_refresh.h"
#include "capture/process_inspector.h"
#include "capture/redactor.h"
#include "capture/signal_guard.h"
#include "capture/thread_pool.h"
#include "capture/write_tracker.h"
#include "common/archive/writer.h"
#include "common/proc/files.h"
#include "common/proc/smaps.h"
#include "common/util/version.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <optional>

namespace procsnap {
namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Adds the time of a scope to one phase of the stats.
class PhaseTimer final {
public:
  PhaseTimer(CaptureStats& stats, const char* phase)
      : stats_(stats), phase_(phase), start_(Clock::now()) {}
  ~PhaseTimer() { stats_.phase_seconds[phase_] += secondsSince(start_); }
  PhaseTimer(const PhaseTimer&) = delete;
  PhaseTimer& operator=(const PhaseTimer&) = delete;

private:
  CaptureStats& stats_;
  const char* phase_;
  Clock::time_point start_;
};

std::string formatUtc(int64_t unix_seconds, const char* format) {
  const time_t t = static_cast<time_t>(unix_seconds);
  struct tm utc {};
  ::gmtime_r(&t, &utc);
  char text[64];
  const size_t n = std::strftime(text, sizeof text, format, &utc);
  return std::string(text, n);
}

// The comm of the target, which also proves it exists before anything is created.
Result<std::string> readComm(pid_t pid) {
  auto comm = readProcFile("/proc/" + std::to_string(pid) + "/comm", 4096);
  if (!comm) {
    const Error& error = comm.error();
    if (error.code == ErrorCode::NotFound || error.code == ErrorCode::ProcessGone)
      return Error::make(ErrorCode::NotFound, "no such process: " + std::to_string(pid));
    return Error::make(error.code,
                       "cannot read process " + std::to_string(pid) + ": " + error.message);
  }
  std::string text = std::move(*comm);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\0'))
    text.pop_back();
  return text;
}

CapturePolicy policyFrom(const CaptureOptions& options, uint32_t coredump_filter) {
  CapturePolicy policy;
  policy.all = options.all;
  if (!options.only_kinds.empty())
    policy.only_kinds = std::set<RegionKind>(options.only_kinds.begin(), options.only_kinds.end());
  policy.exclude_kinds =
      std::set<RegionKind>(options.exclude_kinds.begin(), options.exclude_kinds.end());
  policy.exclude_paths = options.exclude_paths;
  policy.coredump_filter = coredump_filter;
  return policy;
}

// Extra heap pre-faulted beyond the target's resident size: its RSS grows a little between
// this estimate and the freeze, and buffers round up.
constexpr uint64_t kPrefaultSlack = 32ull << 20;

// VmRSS of the target in bytes, 0 when unknown.
uint64_t targetResidentBytes(pid_t pid) {
  auto status = readProcFile("/proc/" + std::to_string(pid) + "/status", 1 << 20);
  if (!status)
    return 0;
  const size_t at = status->find("VmRSS:");
  if (at == std::string::npos)
    return 0;
  return std::strtoull(status->c_str() + at + 6, nullptr, 10) * 1024;
}

// What the progress line counts for a region: its resident bytes when smaps says (a 32 GiB
// untouched reservation costs nothing to copy), else its size.
uint64_t progressWeight(const RegionRecord& region) {
  if (auto rss_kb = region.smaps.field("Rss"))
    return *rss_kb * 1024;
  return region.map().size();
}

// Byte totals of every non-stored page state, keyed by the state's name.
std::map<std::string, uint64_t> skippedBytes(const std::vector<RegionRecord>& regions) {
  std::map<std::string, uint64_t> skipped;
  for (const RegionRecord& region : regions)
    for (const PageRun& run : region.pages)
      if (run.state != PageState::Stored)
        skipped[std::string(toString(run.state))] += run.end - run.start;
  return skipped;
}

// Compresses the buffered chunks on a thread pool and writes them in address order while
// later ones are still being compressed. Uncompressed bytes are released as soon as their
// frame exists, frames as soon as they are written, so memory only shrinks.
class ChunkPipeline final {
public:
  ChunkPipeline(ChunkBuffer& buffer, unsigned jobs, int level, Progress& progress)
      : buffer_(buffer), pool_(jobs), progress_(progress), done_(buffer.entries().size(), 0),
        errors_(buffer.entries().size()) {
    for (unsigned i = 0; i < pool_.size(); ++i)
      compressors_.push_back(std::make_unique<ChunkCompressor>(level));
  }

  // write(chunk) is called in entry order on the calling thread.
  Result<void> run(const std::function<Result<void>(const CompressedChunk&)>& write,
                   CaptureStats& stats) {
    auto& entries = buffer_.entries();
    const Clock::time_point start = Clock::now();
    pool_.start(entries.size(),
                [this](unsigned worker, size_t item) { compressOne(worker, item); });
    Result<void> result = success();
    double write_seconds = 0;
    for (size_t i = 0; i < entries.size(); ++i) {
      {
        std::unique_lock lock(mutex_);
        ready_.wait(lock, [&] { return done_[i] != 0; });
        if (errors_[i]) {
          result = *errors_[i];
          break;
        }
      }
      ChunkBuffer::Entry& entry = entries[i];
      const Clock::time_point write_start = Clock::now();
      auto written = write(*entry.compressed);
      write_seconds += secondsSince(write_start);
      stats.bytes_compressed += entry.compressed->frame.size();
      ++stats.chunks;
      entry.compressed.reset(); // written: release the frame
      if (!written) {
        result = std::move(written).takeError();
        break;
      }
    }
    cancelled_ = true; // after an error, the remaining items finish at once
    pool_.wait();
    stats.phase_seconds["compress"] += secondsSince(start) - write_seconds;
    stats.phase_seconds["write"] += write_seconds;
    return result;
  }

private:
  void compressOne(unsigned worker, size_t item) {
    ChunkBuffer::Entry& entry = buffer_.entries()[item];
    std::optional<Error> error;
    if (!cancelled_ && !entry.compressed) {
      auto compressed = compressors_[worker]->compress(entry.address, entry.raw);
      if (compressed)
        entry.compressed = std::move(*compressed);
      else
        error = std::move(compressed).takeError();
      std::vector<std::byte>().swap(entry.raw); // release the uncompressed copy
      progress_.advance(entry.size);
    }
    std::lock_guard lock(mutex_);
    done_[item] = 1;
    errors_[item] = std::move(error);
    ready_.notify_all();
  }

  ChunkBuffer& buffer_;
  ThreadPool pool_;
  Progress& progress_;
  std::vector<std::unique_ptr<ChunkCompressor>> compressors_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::vector<char> done_;
  std::vector<std::optional<Error>> errors_;
  std::atomic<bool> cancelled_{false};
};

// --cow: forks the frozen target through an injected clone (cow_child.h), or says why not.
Result<std::unique_ptr<CowChild>> forkForCopy(FrozenProcess& frozen,
                                              const std::vector<RegionRecord>& regions) {
  if (auto obstacle = cowObstacle(frozen.pid()))
    return Error::make(ErrorCode::Unsupported, *obstacle);
  auto gadget = findSyscallGadget(frozen.pid(), regions);
  if (!gadget)
    return std::move(gadget).takeError();
  return CowChild::fork(frozen, *gadget);
}

// A region copied before the freeze by --precopy.
struct PrecopiedRegion {
  RegionRecord region; // with its page runs as copied
  bool reused = false; // still the same mapping at the freeze: brought up to date, not dropped
};

struct Precopy {
  std::unique_ptr<WriteTracker> tracker;
  std::vector<PrecopiedRegion> regions; // sorted by address
  double pause_seconds = 0;             // the brief freeze that created the tracker

  PrecopiedRegion* find(const MapsEntry& map) {
    return findIdenticalMapping(
        regions, map,
        [](const PrecopiedRegion& copied) -> const MapsEntry& { return copied.region.map(); });
  }
};

// --precopy, before the freeze: a brief freeze creates the write tracker in the target, then
// every tracked region the policy keeps is copied while the target runs. The policy here uses
// the default coredump_filter: a region it keeps that the target's filter excludes is dropped
// at the freeze, and one it drops is copied frozen.
Result<Precopy> precopy(const CaptureOptions& options, const std::vector<SmapsEntry>& smaps_before,
                        MemoryCopier& copier, const ChunkSink& sink) {
  if (auto obstacle = injectionObstacle(options.pid))
    return Error::make(ErrorCode::Unsupported, *obstacle);
  if (smaps_before.empty())
    return Error::make(ErrorCode::Generic, "cannot read the target's smaps");
  Precopy pre;
  std::vector<RegionRecord> regions;
  std::vector<char> smaps_known;
  {
    auto frozen = FrozenProcess::freeze(options.pid);
    if (!frozen)
      return std::move(frozen).takeError();
    auto read = readRegionsWithEarlierSmaps(options.pid, (*frozen)->stackPointers(), smaps_before,
                                            smaps_known);
    if (!read)
      return std::move(read).takeError();
    regions = std::move(*read);
    auto gadget = findSyscallGadget(options.pid, regions);
    if (!gadget)
      return std::move(gadget).takeError();
    auto tracker = WriteTracker::create(**frozen, *gadget, regions);
    auto thawed = (*frozen)->thaw();
    pre.pause_seconds = (*frozen)->pauseSeconds();
    if (!tracker)
      return std::move(tracker).takeError();
    if (!thawed)
      return std::move(thawed).takeError();
    pre.tracker = std::move(*tracker);
  }
  PROCSNAP_TRY(pre.tracker->arm());
  const CapturePolicy policy = policyFrom(options, kDefaultCoredumpFilter);
  for (size_t i = 0; i < regions.size(); ++i) {
    RegionRecord& region = regions[i];
    if (!smaps_known[i] || !pre.tracker->tracks(region.map()) || regionExclusion(region, policy))
      continue;
    PROCSNAP_TRY(copier.copyRegion(region, sink));
    pre.regions.push_back(PrecopiedRegion{std::move(region), false});
  }
  return pre;
}

} // namespace

Result<CaptureOutcome> runCapture(const CaptureOptions& options, Progress& progress) {
  CaptureOutcome outcome;
  outcome.pid = options.pid;
  CaptureStats& stats = outcome.stats;
  const int64_t now_unix = static_cast<int64_t>(::time(nullptr));

  // 1. The target exists, and the destination is usable: both checked before the freeze.
  auto comm = readComm(options.pid);
  if (!comm)
    return std::move(comm).takeError();
  std::unique_ptr<ArchiveOutput> output;
  {
    auto opened = options.toStdout()
                      ? ArchiveOutput::standardOutput()
                      : ArchiveOutput::create(options.output.empty()
                                                  ? defaultOutputName(*comm, options.pid, now_unix)
                                                  : options.output,
                                              options.force);
    if (!opened)
      return std::move(opened).takeError();
    output = std::move(*opened);
  }
  outcome.output_path = output->path();

  SnapshotMetadata metadata;
  metadata.tool_version = std::string(toolVersion());
  metadata.capture_time = formatUtc(now_unix, "%Y-%m-%dT%H:%M:%SZ");

  uint64_t budget = 0;
  if (options.max_buffer) {
    budget = *options.max_buffer;
  } else {
    auto meminfo = readProcFile("/proc/meminfo");
    budget = defaultMaxBuffer(meminfo ? *meminfo : std::string());
  }
  // Pre-fault about what the copy will hold (the target's resident memory, bounded by the
  // budget), so the copy writes into mapped pages: this is done before the freeze, so it
  // costs wall time, not pause.
  {
    PhaseTimer timer(stats, "prefault");
    prefaultHeap(std::min(budget, targetResidentBytes(options.pid) + kPrefaultSlack));
  }

  // The redactor draws its salt before the freeze, so a failure cannot leave the target
  // stopped.
  std::optional<Redactor> redactor;
  if (!options.redact_patterns.empty()) {
    auto created = Redactor::create(options.redact_patterns);
    if (!created)
      return std::move(created).takeError();
    redactor.emplace(std::move(*created));
  }

  metadata.host = readHostInfo();
  // --cow and --precopy read smaps before the freeze: it walks every page table (about 20 ms
  // per GiB resident), while maps, read frozen, costs next to nothing. Under --cow the fork's
  // own smaps, read after the thaw, then give the VmFlags exactly as they were at the fork
  // (reconcileWithFork).
  std::vector<SmapsEntry> smaps_before;
  if (options.cow || options.precopy) {
    PhaseTimer timer(stats, "smaps");
    if (auto read = readSmapsStable(options.pid))
      smaps_before = std::move(*read); // unreadable: every region is copied frozen
  }

  ChunkBuffer buffer(budget, options.level);
  MemoryCopier copier(options.pid);
  // With --redact, each chunk is held back until the next one has been searched, so a match
  // across the junction is overwritten in both before either is hashed or compressed. An
  // error from buffer.add() is then reported with the next chunk; it ends the capture
  // either way.
  std::optional<CopiedChunk> held;
  const ChunkSink sink = [&buffer, &redactor, &held](CopiedChunk&& chunk) -> Result<void> {
    if (SignalGuard::deferredSignal() != 0)
      return Error::make(ErrorCode::Generic,
                         "interrupted by signal " + std::to_string(SignalGuard::deferredSignal()));
    if (!redactor)
      return buffer.add(std::move(chunk));
    std::optional<CopiedChunk> ready = std::move(held);
    held = std::move(chunk);
    redactor->feedMemory(held->address, held->bytes);
    if (!ready)
      return success();
    return buffer.add(std::move(*ready));
  };

  // --precopy: track the target's writes and copy its memory while it runs; once frozen, only
  // what was written since is copied again.
  std::optional<Precopy> pre;
  if (options.precopy) {
    PhaseTimer timer(stats, "precopy");
    progress.phase("copying while running");
    auto started = precopy(options, smaps_before, copier, sink);
    if (started)
      pre = std::move(*started);
    else if (started.error().code == ErrorCode::ProcessGone || SignalGuard::deferredSignal() != 0)
      return std::move(started).takeError();
    else {
      buffer.discard(0, UINT64_MAX); // whatever it copied is copied again, frozen
      metadata.warnings.push_back("--precopy not used, copied while frozen: " +
                                  started.error().message);
    }
  }

  // 2. Freeze. Declared in this order so that on an early return the target is thawed
  // first, then the --cow fork is reaped (which stops the target briefly), then a signal
  // that arrived meanwhile takes its course.
  std::optional<SignalGuard::Deferral> deferral;
  std::unique_ptr<CowChild> cow;
  progress.phase("freezing");
  std::unique_ptr<FrozenProcess> frozen;
  {
    PhaseTimer timer(stats, "freeze");
    auto result = FrozenProcess::freeze(options.pid);
    if (!result)
      return std::move(result).takeError();
    frozen = std::move(*result);
  }

  // 3. Metadata, read while frozen so it matches the memory.
  std::vector<char> smaps_known; // 0: the region's smaps (VmFlags) are not known yet (--cow)
  progress.phase("reading metadata");
  {
    PhaseTimer timer(stats, "metadata");
    auto process = readProcessInfo(options.pid, options.include_environ);
    if (!process)
      return std::move(process).takeError();
    metadata.process = std::move(*process);
    auto regions = !smaps_before.empty()
                       ? readRegionsWithEarlierSmaps(options.pid, frozen->stackPointers(),
                                                     smaps_before, smaps_known)
                       : readRegions(options.pid, frozen->stackPointers());
    if (!regions)
      return std::move(regions).takeError();
    metadata.regions = std::move(*regions);
    smaps_known.resize(metadata.regions.size(), 1);
  }
  metadata.threads = frozen->threads();

  // 4. Copy. Compression only happens here when the budget is exceeded. With --cow, only the
  // regions a fork does not carry faithfully are copied now; the rest after the thaw.
  const CapturePolicy policy = policyFrom(options, metadata.process.coredump_filter);
  if (options.cow) {
    // From the fork until it is reaped, SIGINT/SIGTERM/SIGHUP end the copy (the sink checks)
    // instead of killing us on the spot, so that the fork is reaped rather than left behind.
    deferral.emplace();
    PhaseTimer timer(stats, "fork");
    auto forked = forkForCopy(*frozen, metadata.regions);
    if (forked)
      cow = std::move(*forked);
    else
      metadata.warnings.push_back("--cow not used, copied while frozen: " + forked.error().message);
  }
  // A mapping made or changed after smaps was read has no VmFlags yet. With a fork, its smaps
  // give them after the thaw (reconcileWithFork); without one (--precopy, or --cow that could
  // not fork) smaps is read now, while frozen: the walk costs pause, but only in that case.
  if (!cow && std::find(smaps_known.begin(), smaps_known.end(), 0) != smaps_known.end()) {
    PhaseTimer timer(stats, "metadata");
    auto regions = readRegions(options.pid, frozen->stackPointers());
    if (!regions)
      return std::move(regions).takeError();
    metadata.regions = std::move(*regions); // the same mappings: the target is frozen
    smaps_known.assign(metadata.regions.size(), 1);
  }
  // Which regions the fork holds as they are: MADV_DONTFORK ones are missing from it.
  std::vector<char> in_fork(metadata.regions.size(), 0);
  if (cow) {
    if (auto fork_maps = readMapsStable(cow->pid()))
      in_fork = presentIn(metadata.regions, *fork_maps);
    else
      metadata.warnings.push_back("--cow: cannot read the fork's maps, copied while frozen: " +
                                  fork_maps.error().message);
  }
  std::vector<char> copy_region(metadata.regions.size(), kSkip);
  uint64_t to_copy = 0;
  for (size_t i = 0; i < metadata.regions.size(); ++i) {
    RegionRecord& region = metadata.regions[i];
    if (auto excluded = regionExclusion(region, policy)) {
      markWholeRegion(region, *excluded);
    } else if (PrecopiedRegion* copied = pre ? pre->find(region.map()) : nullptr) {
      region.pages = std::move(copied->region.pages);
      region.note = copied->region.note;
      copied->reused = true;
      copy_region[i] = kRefreshPrecopied;
    } else {
      const bool from_fork = in_fork[i] && smaps_known[i] && !needsFrozenCopy(region);
      copy_region[i] = from_fork ? kCopyFromFork : kCopyFrozen;
      to_copy += progressWeight(region);
    }
  }
  // Copies the regions marked `which` from `from`; a source that dies makes the rest Lost.
  auto copyRegions = [&](MemoryCopier& from, char which, const char* gone) -> Result<void> {
    for (size_t i = 0; i < metadata.regions.size(); ++i) {
      if (copy_region[i] != which)
        continue;
      RegionRecord& region = metadata.regions[i];
      if (outcome.partial) {
        markWholeRegion(region, PageState::Lost);
        continue;
      }
      auto copied = from.copyRegion(region, sink);
      progress.advance(progressWeight(region));
      if (copied)
        continue;
      if (copied.error().code != ErrorCode::ProcessGone)
        return std::move(copied).takeError();
      outcome.partial = true;
      outcome.partial_reason = gone;
    }
    return success();
  };
  if (pre) {
    // Chunks of mappings that changed (or are left out now) go before anything is copied
    // frozen into the same addresses.
    for (const PrecopiedRegion& copied : pre->regions)
      if (!copied.reused)
        buffer.discard(copied.region.map().start, copied.region.map().end);
    PhaseTimer timer(stats, "refresh");
    for (size_t i = 0; i < metadata.regions.size() && !outcome.partial; ++i) {
      if (copy_region[i] != kRefreshPrecopied)
        continue;
      RegionRecord& region = metadata.regions[i];
      auto written = pre->tracker->writtenRanges(region.map().start, region.map().end);
      auto refreshed = written ? refreshWrittenPages(region, *written, buffer, copier, sink)
                               : Result<uint64_t>(std::move(written).takeError());
      if (refreshed) {
        stats.bytes_recopied += *refreshed;
      } else if (refreshed.error().code == ErrorCode::ProcessGone) {
        outcome.partial = true;
        outcome.partial_reason = "the target exited during the capture";
      } else {
        return std::move(refreshed).takeError();
      }
    }
  }
  {
    PhaseTimer timer(stats, "copy");
    progress.phase("copying", to_copy);
    PROCSNAP_TRY(copyRegions(copier, kCopyFrozen, "the target exited during the capture"));
  }
  stats.compressed_while_frozen = buffer.compressedWhileFrozen();

  // 5. Open the module files while the mappings still exist, then thaw at once.
  ModuleCollector modules = ModuleCollector::open(options.pid, metadata.regions);
  {
    PhaseTimer timer(stats, "thaw");
    auto thawed = frozen->thaw();
    if (!thawed && !outcome.partial)
      metadata.warnings.push_back("thaw: " + thawed.error().message);
  }
  stats.pause_seconds = frozen->pauseSeconds();
  frozen.reset();
  if (pre) {
    stats.pause_seconds += pre->pause_seconds; // the brief freeze that set up the tracker
    PhaseTimer timer(stats, "untrack");
    pre->tracker.reset();
  }
  stats.bytes_copied = copier.stats().bytes_copied;

  // 5b. --cow: the rest, from the fork, while the target runs; then the fork goes away.
  if (cow) {
    {
      PhaseTimer timer(stats, "smaps");
      if (auto fork_smaps = readSmapsStable(cow->pid()))
        reconcileWithFork(metadata.regions, smaps_known, in_fork, *fork_smaps, policy, copy_region,
                          [&](uint64_t start, uint64_t end) {
                            buffer.discard(start, end);
                            if (held && held->address >= start && held->address < end)
                              held.reset();
                          });
      else
        metadata.warnings.push_back("--cow: cannot read the fork's smaps, VmFlags read before the "
                                    "freeze decided: " +
                                    fork_smaps.error().message);
    }
    {
      PhaseTimer timer(stats, "copy");
      // pread, not process_vm_readv: the fork's pages stay shared with the target (TargetRead).
      MemoryCopier fork_copier(cow->pid(), true, TargetRead::ProcMem);
      PROCSNAP_TRY(copyRegions(fork_copier, kCopyFromFork,
                               "the copy-on-write fork was killed during the capture"));
      stats.bytes_copied += fork_copier.stats().bytes_copied;
    }
    PhaseTimer timer(stats, "release");
    auto reap_pause = cow->release();
    if (reap_pause)
      stats.pause_seconds += *reap_pause; // the target was stopped again to reap the fork
    else if (reap_pause.error().code != ErrorCode::ProcessGone)
      metadata.warnings.push_back("--cow: " + reap_pause.error().message);
    cow.reset();
    deferral.reset();
  }
  if (redactor) {
    redactor->finishMemory();
    if (held)
      if (auto added = buffer.add(std::move(*held)); !added)
        return std::move(added).takeError();
  }

  // 6. Module sketches, from the opened files, after the thaw.
  progress.phase("reading modules");
  std::vector<ModuleSketch> sketches;
  {
    PhaseTimer timer(stats, "modules");
    sketches = modules.collect(ModuleCollectOptions{options.embed_binaries},
                               [&buffer](uint64_t address, std::span<std::byte> out) {
                                 return buffer.read(address, out);
                               });
    for (const std::string& warning : modules.warnings())
      metadata.warnings.push_back(warning);
    if (redactor)
      for (size_t i = 0; i < sketches.size(); ++i)
        redactor->redactModule(static_cast<uint32_t>(i), sketches[i]);
    for (const ModuleSketch& sketch : sketches)
      metadata.modules.push_back(sketch.record);
  }

  // 7. Statistics known before the chunks are written go into the metadata too.
  buffer.sortByAddress();
  metadata.partial = outcome.partial;
  metadata.partial_reason = outcome.partial_reason;
  stats.threads = static_cast<uint32_t>(metadata.threads.size());
  stats.bytes_stored = buffer.storedBytes();
  stats.bytes_skipped = skippedBytes(metadata.regions);
  metadata.stats = stats;
  std::optional<RedactionManifest> manifest;
  if (redactor) {
    redactor->redactMetadata(metadata);
    manifest = redactor->manifest();
    outcome.redactions = manifest->entries.size() + manifest->omitted_entries;
    outcome.redacted_bytes = manifest->bytes_redacted;
  }

  // 8. Write: header, metadata, modules, then chunks as they are compressed.
  ArchiveWriter writer(output->fd());
  auto writeFailed = [&](const Error& error) { return output->describeWriteError(error); };
  {
    PhaseTimer timer(stats, "write");
    if (auto r = writer.writeHeader(); !r)
      return writeFailed(r.error());
    if (auto r = writer.writeMetadata(metadata); !r)
      return writeFailed(r.error());
    for (const ModuleSketch& sketch : sketches)
      if (auto r = writer.writeModule(sketch); !r)
        return writeFailed(r.error());
    if (manifest)
      if (auto r = writer.writeRedactions(*manifest); !r)
        return writeFailed(r.error());
  }
  sketches.clear();
  progress.phase("compressing", buffer.storedBytes());
  {
    const unsigned jobs = options.jobs != 0 ? options.jobs : defaultJobCount();
    ChunkPipeline pipeline(buffer, jobs, options.level, progress);
    auto written = pipeline.run(
        [&writer](const CompressedChunk& chunk) { return writer.writeChunk(chunk); }, stats);
    if (!written) {
      // A compression failure is not a write failure: keep its own message.
      if (written.error().code == ErrorCode::NoSpace || written.error().code == ErrorCode::Io)
        return writeFailed(written.error());
      return std::move(written).takeError();
    }
  }
  {
    PhaseTimer timer(stats, "write");
    // The stats block cannot time its own writing: "write" then excludes it and finish().
    CaptureStats final_stats = stats;
    if (auto r = writer.writeStats(final_stats); !r)
      return writeFailed(r.error());
    if (auto r = writer.finish(); !r)
      return writeFailed(r.error());
  }
  progress.clear();
  {
    PhaseTimer timer(stats, "fsync");
    if (auto r = output->commit(); !r)
      return std::move(r).takeError();
  }

  outcome.archive_bytes = writer.bytesWritten();
  outcome.regions = static_cast<uint32_t>(metadata.regions.size());
  outcome.modules = static_cast<uint32_t>(metadata.modules.size());
  outcome.warnings = metadata.warnings;
  outcome.exit_code = outcome.partial ? ExitCode::Partial : ExitCode::Success;
  return outcome;
}

} // namespace procsnap
