// The PAGEMAP_SCAN ioctl (Linux 6.7, Documentation/admin-guide/mm/pagemap.rst), defined here
// because Debian 12's linux-libc-dev 6.1 lacks it. Layouts match include/uapi/linux/fs.h.
#pragma once

#include <cstdint>
#include <sys/ioctl.h>

namespace procsnap::kernel {

// Page categories (bits of page_region.categories and the masks).
inline constexpr uint64_t PAGE_IS_WPALLOWED = 1u << 0;
inline constexpr uint64_t PAGE_IS_WRITTEN = 1u << 1;
inline constexpr uint64_t PAGE_IS_FILE = 1u << 2;
inline constexpr uint64_t PAGE_IS_PRESENT = 1u << 3;
inline constexpr uint64_t PAGE_IS_SWAPPED = 1u << 4;
inline constexpr uint64_t PAGE_IS_PFNZERO = 1u << 5;
inline constexpr uint64_t PAGE_IS_HUGE = 1u << 6;
inline constexpr uint64_t PAGE_IS_SOFT_DIRTY = 1u << 7;

// pm_scan_arg.flags
inline constexpr uint64_t PM_SCAN_WP_MATCHING = 1u << 0;
inline constexpr uint64_t PM_SCAN_CHECK_WPASYNC = 1u << 1;

struct page_region {
  uint64_t start;
  uint64_t end;
  uint64_t categories;
};

struct pm_scan_arg {
  uint64_t size; // sizeof(pm_scan_arg)
  uint64_t flags;
  uint64_t start;
  uint64_t end;
  uint64_t walk_end; // out: where the walk stopped
  uint64_t vec;      // page_region array
  uint64_t vec_len;
  uint64_t max_pages;
  uint64_t category_inverted;
  uint64_t category_mask;
  uint64_t category_anyof_mask;
  uint64_t return_mask;
};

static_assert(sizeof(page_region) == 24);
static_assert(sizeof(pm_scan_arg) == 96);

inline constexpr unsigned long PAGEMAP_SCAN = _IOWR('f', 16, struct pm_scan_arg);

} // namespace procsnap::kernel
