// A log the reader refuses must leave HDF5 as it found it: no handle open inside the library, its
// global lock free for other threads, and a new file written at the same path (the same inode)
// read as itself. When an error left through HDF5's object walk none of this held: the next file
// at that inode was read through the refused one's cached metadata (a heap overflow in H5Dread
// under the log fuzzer) and another thread's HDF5 call waited forever.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <torch/torch.h>

#include <chrono>
#include <future>
#include <thread>

#include "harness/log/h5_types.h"
#include "harness/log/log_reader.h"
#include "harness/log/log_writer.h"
#include "tests/test_util.h"

namespace cliprepro {
namespace {

// A two-step log of `n` tensors t0..t(n-1) whose values start at `base`.
void write_small_log(const std::filesystem::path& path, int n, float base) {
  LogWriter w(path, LogSelection{}, 1, {});
  for (int64_t step = 0; step <= 1; ++step) {
    StepRecord rec;
    rec.step = step;
    for (int i = 0; i < n; ++i) {
      rec.tensors.push_back({"t" + std::to_string(i), Phase::kForward,
                             torch::full({4}, base + float(10 * i + step))});
    }
    w.write(rec);
  }
  w.close();
}

// Damage the reader notices in the middle of its walk of /tensors: a group without its dtype.
void drop_dtype_of(const std::filesystem::path& path, const std::string& group) {
  H5Id f = h5_check(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), "open");
  h5_check_status(H5Adelete_by_name(f.get(), ("/tensors/" + group).c_str(), "dtype", H5P_DEFAULT),
                  "delete dtype");
}

ino_t inode_of(const std::filesystem::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0);
  return st.st_ino;
}

TEST(LogReadErrors, ARefusedLogLeavesNothingOpenAndTheNextFileAtItsInodeReadsAsItself) {
  h5_quiet();
  const auto dir = test::temp_dir("log_read_errors");
  const auto damaged = dir / "log.h5", other = dir / "other.h5";
  write_small_log(damaged, 3, 0.0f);
  drop_dtype_of(damaged, "t1");
  write_small_log(other, 5, 100.0f);
  const ssize_t open_before = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);

  EXPECT_THROW(LogReader{damaged}, std::runtime_error);
  EXPECT_EQ(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), open_before)
      << "the refused log left HDF5 objects open";

  // Rewritten in place, as a fuzzer's scratch file or a sweep's damaged copy is.
  const ino_t inode = inode_of(damaged);
  test::write_file(damaged, test::read_file(other));
  ASSERT_EQ(inode_of(damaged), inode);
  const LogReader again(damaged), expected(other);
  ASSERT_EQ(again.series().size(), 5u);
  for (const auto& [name, s] : expected.series()) {
    ASSERT_NE(again.find(name), nullptr) << name;
    EXPECT_EQ(again.find(name)->digests, s.digests) << name;
  }
}

TEST(LogReadErrors, AnotherThreadCanUseHdf5AfterARefusedLog) {
  h5_quiet();
  const auto dir = test::temp_dir("log_read_errors_thread");
  const auto damaged = dir / "log.h5", good = dir / "good.h5";
  write_small_log(damaged, 3, 0.0f);
  drop_dtype_of(damaged, "t2");
  write_small_log(good, 2, 0.0f);
  EXPECT_THROW(LogReader{damaged}, std::runtime_error);

  std::promise<size_t> read;
  auto result = read.get_future();
  std::thread reader([&read, good] {
    try {
      read.set_value(LogReader(good).series().size());
    } catch (...) {
      read.set_exception(std::current_exception());
    }
  });
  if (result.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
    reader.detach();  // blocked on libhdf5's lock for good; the process exit ends it
    FAIL() << "another thread's HDF5 call is still waiting: the refused log left the lock held";
  }
  reader.join();
  EXPECT_EQ(result.get(), 2u);
}

}  // namespace
}  // namespace cliprepro
