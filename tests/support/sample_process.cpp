#include "tests/support/sample_process.h"
