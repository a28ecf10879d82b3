#include "common/util/version.h"

namespace procsnap {

std::string_view toolVersion() {
  return PROCSNAP_VERSION;
}

} // namespace procsnap
