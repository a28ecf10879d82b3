// The php-fpm maps listing from the seed article (/work/shared/seed/linux-process-memory.md),
// with its "..." line removed. Shared by the maps and region-kind tests.
#pragma once

#include <string_view>

namespace procsnap::test {

inline constexpr std::string_view kSeedPhpFpmMaps =
    R"(5577acaa6000-5577ace79000 r-xp 00000000 08:03 3024822                    /usr/sbin/php-fpm7.0-zts
5577ad078000-5577ad0f1000 r--p 003d2000 08:03 3024822                    /usr/sbin/php-fpm7.0-zts
5577ad0f1000-5577ad0fe000 rw-p 0044b000 08:03 3024822                    /usr/sbin/php-fpm7.0-zts
5577ad0fe000-5577ad114000 rw-p 00000000 00:00 0 
5577ae59b000-5577ae75f000 rw-p 00000000 00:00 0                          [heap]
7f0d54878000-7f0d54883000 r-xp 00000000 08:03 5249044                    /lib/x86_64-linux-gnu/libnss_files-2.23.so
7f0d54883000-7f0d54a82000 ---p 0000b000 08:03 5249044                    /lib/x86_64-linux-gnu/libnss_files-2.23.so
7f0d54a82000-7f0d54a83000 r--p 0000a000 08:03 5249044                    /lib/x86_64-linux-gnu/libnss_files-2.23.so
7f0d54a83000-7f0d54a84000 rw-p 0000b000 08:03 5249044                    /lib/x86_64-linux-gnu/libnss_files-2.23.so
7f0d61cf9000-7f0d61cfa000 r--p 00025000 08:03 5247495                    /lib/x86_64-linux-gnu/ld-2.23.so
7f0d61cfa000-7f0d61cfb000 rw-p 00026000 08:03 5247495                    /lib/x86_64-linux-gnu/ld-2.23.so
7f0d61cfb000-7f0d61cfc000 rw-p 00000000 00:00 0 
7fff72f0b000-7fff72f2c000 rw-p 00000000 00:00 0                          [stack]
7fff72ff6000-7fff72ff8000 r--p 00000000 00:00 0                          [vvar]
7fff72ff8000-7fff72ffa000 r-xp 00000000 00:00 0                          [vdso]
ffffffffff600000-ffffffffff601000 r-xp 00000000 00:00 0                  [vsyscall]
)";

} // namespace procsnap::test
