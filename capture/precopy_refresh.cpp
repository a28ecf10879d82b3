#include "capture/precopy_refresh.h"

#include <algorithm>

namespace procsnap {

std::vector<AddressRange> widenToChunks(const std::vector<AddressRange>& written,
                                        const std::vector<AddressRange>& chunks) {
  std::vector<AddressRange> spans;
  for (AddressRange range : written) {
    // The chunks overlapping [start, end): from the last one starting before end, back.
    auto it =
        std::lower_bound(chunks.begin(), chunks.end(), range.end,
                         [](const AddressRange& chunk, uint64_t end) { return chunk.start < end; });
    while (it != chunks.begin()) {
      --it;
      if (it->end <= range.start)
        break;
      range.start = std::min(range.start, it->start);
      range.end = std::max(range.end, it->end);
    }
    if (!spans.empty() && spans.back().end >= range.start)
      spans.back().end = std::max(spans.back().end, range.end);
    else
      spans.push_back(range);
  }
  return spans;
}

void spliceRuns(std::vector<PageRun>& runs, const std::vector<PageRun>& fresh) {
  if (fresh.empty())
    return;
  const uint64_t start = fresh.front().start;
  const uint64_t end = fresh.back().end;
  std::vector<PageRun> spliced;
  spliced.reserve(runs.size() + fresh.size() + 2);
  auto append = [&spliced](PageRun run) {
    if (run.start >= run.end)
      return;
    if (!spliced.empty() && spliced.back().end == run.start && spliced.back().state == run.state)
      spliced.back().end = run.end;
    else
      spliced.push_back(run);
  };
  for (const PageRun& run : runs)
    if (run.start < start)
      append(PageRun{run.start, std::min(run.end, start), run.state});
  for (const PageRun& run : fresh)
    append(run);
  for (const PageRun& run : runs)
    if (run.end > end)
      append(PageRun{std::max(run.start, end), run.end, run.state});
  runs = std::move(spliced);
}

Result<uint64_t> refreshWrittenPages(RegionRecord& region, const std::vector<AddressRange>& written,
                                     ChunkBuffer& buffer, MemoryCopier& copier,
                                     const ChunkSink& sink) {
  if (written.empty())
    return uint64_t{0};
  const uint64_t region_start = region.map().start;
  const uint64_t region_end = region.map().end;
  std::vector<AddressRange> chunks;
  for (const ChunkBuffer::Entry& entry : buffer.entries())
    if (entry.address >= region_start && entry.address < region_end)
      chunks.push_back(AddressRange{entry.address, entry.address + entry.size});
  std::sort(chunks.begin(), chunks.end(),
            [](const AddressRange& a, const AddressRange& b) { return a.start < b.start; });

  uint64_t copied = 0;
  for (const AddressRange& span : widenToChunks(written, chunks)) {
    const uint64_t start = std::max(span.start, region_start);
    const uint64_t end = std::min(span.end, region_end);
    if (start >= end)
      continue;
    buffer.discard(start, end);
    RegionRecord part;
    part.smaps = region.smaps;
    part.kind = region.kind;
    part.smaps.map.start = start;
    part.smaps.map.end = end;
    if (!region.map().isAnonymous())
      part.smaps.map.offset += start - region_start;
    auto result = copier.copyRegion(part, sink);
    spliceRuns(region.pages, part.pages);
    for (const PageRun& run : part.pages)
      if (run.state == PageState::Stored || run.state == PageState::Zero)
        copied += run.end - run.start; // read again; holes cost nothing
    if (!part.note.empty() && region.note.find(part.note) == std::string::npos)
      region.note += region.note.empty() ? part.note : "; " + part.note;
    if (!result)
      return std::move(result).takeError();
  }
  return copied;
}

} // namespace procsnap
