// Checkpoint I/O tests (being written).
#include <gtest/gtest.h>
