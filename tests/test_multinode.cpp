// Multi-node launch on one machine: two torchrun agents (--nnodes 2, c10d rendezvous on
// loopback, one rank each) must train bit for bit as one agent with --nproc-per-node 2.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "harness/log/env_fingerprint.h"
#include "harness/log/log_reader.h"
#include "test_paths.h"
#include "tests/test_util.h"

namespace cliprepro {
namespace {

// A TCP port on 127.0.0.1 that was free a moment ago (the kernel's pick for port 0).
int free_loopback_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    throw std::runtime_error("bind/getsockname on 127.0.0.1 failed");
  }
  close(fd);
  return ntohs(addr.sin_port);
}

// torchrun, as tests/test_util.h's torchrun() spells it, without --standalone. Every agent is
// bounded by coreutils' timeout, so a rendezvous that never completes fails the test instead
// of hanging CI; OMP_NUM_THREADS is exported because torchrun sets it to 1 only for
// --nproc-per-node > 1, and the environment fingerprint keys on it.
std::string agent(const std::string& launch, const std::string& program) {
  return "OMP_NUM_THREADS=1 timeout -k 10 120 " + std::string(kPython) +
         " -m torch.distributed.run " + launch + " --max-restarts 0 --no-python " + program;
}

TEST(Dist, TwoTorchrunAgentsOverC10dRendezvousMatchOneAgentBitwise) {
  const auto dir = test::temp_dir("multinode");
  const auto scenario = dir / "mn.toml";
  test::write_file(scenario,
                   "name = \"mn\"\nmodel = \"tiny\"\ntrain-num-samples = 64\n"
                   "val-num-samples = 16\nbatch-size = 8\nsteps = 2\nwarmup = 1\nlr = 1e-3\n"
                   "local-loss = true\ngather-with-grad = true\ndist-backend = \"gloo\"\n"
                   "[determinism]\nthreads = 1\n[log]\nfull-steps = [1, -1]\n"
                   "full-tensors = [\"grads/*\", \"data/sample_ids\"]\n");
  const auto program = [&](const std::string& out) {
    return std::string(kCliBin) + " run " + scenario.string() + " --out " + (dir / out).string() +
           " --no-golden --quiet";
  };

  // (a) One agent, two local ranks.
  const std::string one = agent("--standalone --nproc-per-node 2", program("one"));
  auto ra = test::run_command(one);
  ASSERT_EQ(ra.exit_code, 0) << one << "\n" << ra.output;

  // (b) Two agents started concurrently, one rank each, meeting at a c10d rendezvous on
  // loopback (both "nodes" are this host, so both write into the same --out; ranks differ).
  // c10d ignores --node-rank for the rank order (it sorts the participants), so which agent
  // holds RANK 0 is not fixed; what each rank computes is.
  const int port = free_loopback_port();
  const std::string rdzv =
      "--nnodes 2 --nproc-per-node 1 --rdzv-backend c10d --rdzv-endpoint "
      "127.0.0.1:" +
      std::to_string(port) + " --rdzv-id cliprepro-mn-" + std::to_string(getpid()) + "-" +
      std::to_string(port) + " --rdzv-conf join_timeout=60,read_timeout=60 --local-addr 127.0.0.1";
  std::string two;
  for (int node : {0, 1}) {
    const auto node_log = (dir / ("node" + std::to_string(node) + ".log")).string();
    two += agent(rdzv + " --node-rank " + std::to_string(node), program("two")) + " > " + node_log +
           " 2>&1 & p" + std::to_string(node) + "=$!; ";
  }
  two += "wait $p0; r0=$?; wait $p1; r1=$?; cat " + (dir / "node0.log").string() + " " +
         (dir / "node1.log").string() +
         "; echo \"agents exited $r0 $r1\"; [ $r0 = 0 ] && [ $r1 = 0 ]";
  auto rb = test::run_command(two);
  ASSERT_EQ(rb.exit_code, 0) << two << "\n" << rb.output;

  const auto manifest = nlohmann::json::parse(test::read_file(dir / "two" / "mn.manifest.json"));
  EXPECT_EQ(manifest.at("world_size"), 2);
  EXPECT_EQ(manifest.at("logs"), (nlohmann::json{"mn.rank0.h5", "mn.rank1.h5"}));
  for (int r : {0, 1}) {
    SCOPED_TRACE("rank " + std::to_string(r));
    const auto name = "mn.rank" + std::to_string(r) + ".h5";
    const auto a = dir / "one" / name, b = dir / "two" / name;
    auto cmp = test::run_cli("compare " + a.string() + " " + b.string());
    EXPECT_EQ(cmp.exit_code, 0) << cmp.output;
    EXPECT_NE(cmp.output.find("MATCH"), std::string::npos) << cmp.output;
    // Same environment key, so a golden blessed on one launch checks the other bitwise.
    LogReader la(a), lb(b);
    EXPECT_TRUE(lb.complete());
    const auto diffs = fingerprint_differences(nlohmann::json::parse(la.attr("fingerprint")),
                                               nlohmann::json::parse(lb.attr("fingerprint")));
    EXPECT_TRUE(diffs.empty()) << diffs.front();
  }
}

}  // namespace
}  // namespace cliprepro
