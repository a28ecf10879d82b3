#include "analyze/engines/region_matcher.h"

#include <llvm/Support/FormatVariadic.h>

#include <algorithm>
#include <map>
#include <tuple>

namespace procsnap::analyze {

namespace {

// By path alone: a core's NT_FILE note has no device or inode, so identity must not need them.
bool isFileBacked(const RegionRecord& region) {
  return !region.map().path.empty() && !region.map().isPseudo();
}

// Whether two overlapping regions can be the same mapping: the same file at the same file
// offset for the same address, the same pseudo-region, or anonymous memory on both sides.
bool sameMappingAtAddress(const RegionRecord& base, const RegionRecord& next) {
  const MapsEntry& a = base.map();
  const MapsEntry& b = next.map();
  if (isFileBacked(base) || isFileBacked(next)) {
    if (!isFileBacked(base) || !isFileBacked(next) || a.path != b.path)
      return false;
    // The file offset of any address must agree: offset - start equal on both sides.
    return a.offset - a.start == b.offset - b.start;
  }
  return a.path == b.path || (a.path.empty() && b.path.empty());
}

} // namespace

std::string regionIdentity(const std::vector<RegionRecord>& regions, size_t index) {
  const RegionRecord& region = regions[index];
  if (isFileBacked(region))
    return llvm::formatv("file:{0}@{1:x}", region.map().path, region.map().offset).str();
  if (!region.map().path.empty())
    return region.map().path;
  if (region.kind == RegionKind::Bss && index > 0)
    return "bss:" + regions[index - 1].map().path;
  return "anon:" + std::string(toString(region.kind));
}

std::vector<RegionPair> matchRegions(const std::vector<RegionRecord>& base,
                                     const std::vector<RegionRecord>& next) {
  std::vector<bool> base_used(base.size(), false);
  std::vector<bool> next_used(next.size(), false);
  std::vector<RegionPair> pairs;

  // 1. By address: overlapping candidates, largest overlap first, one to one.
  struct Candidate {
    uint64_t overlap;
    size_t base_index;
    size_t new_index;
  };
  std::vector<Candidate> candidates;
  size_t first = 0;
  for (size_t j = 0; j < next.size(); ++j) {
    const MapsEntry& n = next[j].map();
    while (first < base.size() && base[first].map().end <= n.start)
      ++first;
    for (size_t i = first; i < base.size() && base[i].map().start < n.end; ++i) {
      const MapsEntry& b = base[i].map();
      uint64_t overlap = std::min(b.end, n.end) - std::max(b.start, n.start);
      if (b.end > n.start && overlap > 0 && sameMappingAtAddress(base[i], next[j]))
        candidates.push_back({overlap, i, j});
    }
  }
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const Candidate& x, const Candidate& y) { return x.overlap > y.overlap; });
  for (const Candidate& candidate : candidates) {
    if (base_used[candidate.base_index] || next_used[candidate.new_index])
      continue;
    base_used[candidate.base_index] = next_used[candidate.new_index] = true;
    pairs.push_back(
        {static_cast<int>(candidate.base_index), static_cast<int>(candidate.new_index), 0, true});
  }

  // 2. By identity: the k-th unmatched region of an identity in the base pairs with the k-th
  // of the same identity in the new snapshot. Unnamed anonymous memory must also agree in
  // size, or any two mmaps would pair up.
  auto identityKey = [](const std::vector<RegionRecord>& regions, size_t index) {
    std::string key = regionIdentity(regions, index);
    if (key.rfind("anon:", 0) == 0)
      key += llvm::formatv("/{0:x}", regions[index].map().size()).str();
    return key;
  };
  std::map<std::string, std::vector<size_t>> unmatched_base;
  for (size_t i = 0; i < base.size(); ++i)
    if (!base_used[i])
      unmatched_base[identityKey(base, i)].push_back(i);
  std::map<std::string, size_t> taken;
  for (size_t j = 0; j < next.size(); ++j) {
    if (next_used[j])
      continue;
    std::string key = identityKey(next, j);
    auto it = unmatched_base.find(key);
    if (it == unmatched_base.end())
      continue;
    size_t& count = taken[key];
    if (count >= it->second.size())
      continue;
    size_t i = it->second[count++];
    base_used[i] = next_used[j] = true;
    pairs.push_back({static_cast<int>(i), static_cast<int>(j),
                     static_cast<int64_t>(next[j].map().start - base[i].map().start), false});
  }

  for (size_t i = 0; i < base.size(); ++i)
    if (!base_used[i])
      pairs.push_back({static_cast<int>(i), -1, 0, true});
  for (size_t j = 0; j < next.size(); ++j)
    if (!next_used[j])
      pairs.push_back({-1, static_cast<int>(j), 0, true});

  auto address = [&](const RegionPair& pair) {
    return pair.new_index >= 0 ? next[static_cast<size_t>(pair.new_index)].map().start
                               : base[static_cast<size_t>(pair.base_index)].map().start;
  };
  std::sort(pairs.begin(), pairs.end(), [&](const RegionPair& x, const RegionPair& y) {
    return std::make_tuple(address(x), x.new_index < 0) <
           std::make_tuple(address(y), y.new_index < 0);
  });
  return pairs;
}

} // namespace procsnap::analyze
