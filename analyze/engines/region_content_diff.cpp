#include "analyze/engines/region_content_diff.h"

#include <algorithm>
#include <cstring>

namespace procsnap::analyze {

namespace {

// A stretch with one page state, at base addresses.
struct StateRun {
  uint64_t start = 0;
  uint64_t end = 0;
  PageState state = PageState::NotPresent;
};

// Whether the bytes of a page in this state are known: stored, or known to read as zeros.
bool contentKnown(PageState state) {
  return holdsBytes(state) || state == PageState::Zero || state == PageState::NotPresent;
}

// The page states of region over [start, end) of its own addresses, shifted by -shift to base
// addresses, with gaps in the page map as NotPresent.
std::vector<StateRun> stateRuns(const RegionRecord& region, uint64_t start, uint64_t end,
                                uint64_t shift) {
  std::vector<StateRun> runs;
  uint64_t cursor = start;
  auto add = [&](uint64_t from, uint64_t to, PageState state) {
    if (from < to)
      runs.push_back({from - shift, to - shift, state});
  };
  for (const PageRun& run : region.pages) {
    if (run.end <= cursor)
      continue;
    if (run.start >= end)
      break;
    if (run.start > cursor) {
      add(cursor, run.start, PageState::NotPresent);
      cursor = run.start;
    }
    uint64_t stop = std::min(end, run.end);
    add(cursor, stop, run.state);
    cursor = stop;
  }
  add(cursor, end, PageState::NotPresent);
  return runs;
}

const ContentDigest* digestAt(const ContentDigests& digests, uint64_t address) {
  auto it = std::upper_bound(
      digests.digests.begin(), digests.digests.end(), address,
      [](uint64_t value, const ContentDigest& digest) { return value < digest.start; });
  if (it == digests.digests.begin())
    return nullptr;
  --it;
  return address < it->end ? &*it : nullptr;
}

class RegionComparer final {
public:
  RegionComparer(const Snapshot& base, const Snapshot& next, uint64_t delta, uint64_t page_size)
      : base_(base), next_(next), delta_(delta), page_size_(page_size) {}

  llvm::Expected<ContentDiff> run(uint64_t start, uint64_t end, const RegionRecord& base_region,
                                  const RegionRecord& next_region) {
    base_digests_ = base_.contentDigests(start, end);
    next_digests_ = next_.contentDigests(start + delta_, end + delta_);
    digests_comparable_ =
        !base_digests_.algorithm.empty() && base_digests_.algorithm == next_digests_.algorithm;
    std::vector<StateRun> base_runs = stateRuns(base_region, start, end, 0);
    std::vector<StateRun> next_runs = stateRuns(next_region, start + delta_, end + delta_, delta_);
    size_t i = 0, j = 0;
    uint64_t cursor = start;
    while (cursor < end && i < base_runs.size() && j < next_runs.size()) {
      uint64_t stop = std::min(base_runs[i].end, next_runs[j].end);
      if (llvm::Error error = compareStretch(cursor, stop, base_runs[i].state, next_runs[j].state))
        return error;
      cursor = stop;
      if (base_runs[i].end == stop)
        ++i;
      if (next_runs[j].end == stop)
        ++j;
    }
    return std::move(diff_);
  }

private:
  llvm::Error compareStretch(uint64_t start, uint64_t end, PageState base_state,
                             PageState next_state) {
    bool base_known = contentKnown(base_state);
    bool next_known = contentKnown(next_state);
    if (!base_known || !next_known) {
      if (base_known || next_known || base_state != next_state)
        diff_.bytes_not_compared += end - start;
      return llvm::Error::success();
    }
    bool base_stored = holdsBytes(base_state);
    bool next_stored = holdsBytes(next_state);
    if (!base_stored && !next_stored)
      return llvm::Error::success(); // zeros on both sides
    diff_.bytes_compared += end - start;
    if (!base_stored || !next_stored)
      return compareBytes(start, end, base_stored, next_stored);
    uint64_t cursor = start;
    while (cursor < end) {
      const ContentDigest* a = digests_comparable_ ? digestAt(base_digests_, cursor) : nullptr;
      const ContentDigest* b =
          digests_comparable_ ? digestAt(next_digests_, cursor + delta_) : nullptr;
      if (a && b && a->start == cursor && b->start == cursor + delta_ && a->size() == b->size() &&
          a->end <= end) {
        if (a->hash == b->hash) {
          ++diff_.chunks_equal_by_digest;
        } else {
          ++diff_.chunks_different_by_digest;
          if (llvm::Error error = compareBytes(cursor, a->end, true, true))
            return error;
        }
        cursor = a->end;
        continue;
      }
      // Not aligned: compare up to the next digest boundary on either side, where the two
      // may line up again.
      uint64_t stop = end;
      if (a)
        stop = std::min(stop, a->end);
      if (b)
        stop = std::min(stop, b->end - delta_);
      if (llvm::Error error = compareBytes(cursor, stop, true, true))
        return error;
      cursor = stop;
    }
    return llvm::Error::success();
  }

  // Reads [start, end) (base addresses) from the sides that store it, zeros elsewhere, and
  // records what differs.
  llvm::Error compareBytes(uint64_t start, uint64_t end, bool read_base, bool read_next) {
    for (uint64_t cursor = start; cursor < end;) {
      size_t size = static_cast<size_t>(std::min(kCompareBlockBytes, end - cursor));
      base_block_.assign(size, 0);
      next_block_.assign(size, 0);
      if (read_base) {
        auto read = base_.read(cursor, base_block_);
        if (!read)
          return read.takeError();
      }
      if (read_next) {
        auto read = next_.read(cursor + delta_, next_block_);
        if (!read)
          return read.takeError();
      }
      diff_.bytes_read += size;
      recordDifferences(cursor, size);
      cursor += size;
    }
    return llvm::Error::success();
  }

  void recordDifferences(uint64_t address, size_t size) {
    for (size_t offset = 0; offset < size;) {
      // Page by page: pages are the unit reported, and memcmp skips equal ones fast.
      uint64_t page_end = (address + offset) / page_size_ * page_size_ + page_size_;
      size_t piece =
          static_cast<size_t>(std::min<uint64_t>(size - offset, page_end - (address + offset)));
      const uint8_t* a = base_block_.data() + offset;
      const uint8_t* b = next_block_.data() + offset;
      if (std::memcmp(a, b, piece) != 0) {
        uint64_t changed = 0;
        for (size_t k = 0; k < piece; ++k)
          changed += a[k] != b[k];
        diff_.bytes_changed += changed;
        uint64_t page = page_end - page_size_;
        if (diff_.changed_ranges.empty() || diff_.changed_ranges.back().end < page) {
          diff_.changed_ranges.push_back({page, page_end});
          ++diff_.pages_changed;
        } else if (diff_.changed_ranges.back().end == page) {
          diff_.changed_ranges.back().end = page_end;
          ++diff_.pages_changed;
        } // else: the same page, already counted (a stretch boundary inside a page)
      }
      offset += piece;
    }
  }

  const Snapshot& base_;
  const Snapshot& next_;
  uint64_t delta_; // modular: new address = base address + delta_
  uint64_t page_size_;
  ContentDigests base_digests_;
  ContentDigests next_digests_;
  bool digests_comparable_ = false;
  std::vector<uint8_t> base_block_;
  std::vector<uint8_t> next_block_;
  ContentDiff diff_;
};

} // namespace

llvm::Expected<ContentDiff> compareRegionContents(const Snapshot& base, const Snapshot& next,
                                                  const RegionPair& pair) {
  if (!pair.matched())
    return ContentDiff{};
  const RegionRecord& a = base.metadata().regions[static_cast<size_t>(pair.base_index)];
  const RegionRecord& b = next.metadata().regions[static_cast<size_t>(pair.new_index)];
  uint64_t delta = static_cast<uint64_t>(pair.delta);
  // The overlap, at base addresses.
  uint64_t start = std::max(a.map().start, b.map().start - delta);
  uint64_t end = std::min(a.map().end, b.map().end - delta);
  if (start >= end)
    return ContentDiff{};
  uint64_t page_size = std::max<uint64_t>(1, base.metadata().host.page_size);
  RegionComparer comparer(base, next, delta, page_size);
  return comparer.run(start, end, a, b);
}

} // namespace procsnap::analyze
