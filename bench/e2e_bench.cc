// e2e_bench — the CPU cost of encrypted bodies (channel/e2e*), per suite:
// sealing a chat request on the client, opening it on the replica, and one
// streamed answer frame (an SSE event of one token) sealed by the replica
// and opened by the client; in mutual mode (HPKE auth mode) sealing with the
// client's key, and the thread hop `cllm proxy` makes to seal there off its
// I/O thread (client/upstream_pool.cc OffLoop). docs/performance.md §9 sets
// these against the time a token takes on the model:
//   build/bin/e2e_bench --benchmark_format=json
// Built with -DCLLM_BUILD_BENCH=ON.
#include <benchmark/benchmark.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdlib>
#include <optional>
#include <string>
#include <strings.h>

#include "channel/e2e.h"
#include "channel/e2e_response.h"
#include "crypto/hpke.h"

namespace {

using namespace cllm;
namespace e2e = channel::e2e;
namespace hpke = crypto::hpke;

// A chat request of about 1 KiB, and one SSE event of one token (the shape
// cllm-server streams).
const std::string kRequest = [] {
  std::string content;
  while (content.size() < 900) content += "Once upon a time, there was a little robot. ";
  return R"({"model":"m","stream":true,"max_tokens":64,"messages":[{"role":"user","content":")" + content +
         R"("}]})";
}();
const std::string kEvent =
    R"(data: {"id":"chatcmpl-0123456789abcdef","object":"chat.completion.chunk","created":1764000000,)"
    R"("model":"m","choices":[{"index":0,"delta":{"content":" robot"},"finish_reason":null}]})"
    "\n\n";

hpke::Suite SuiteOf(const benchmark::State& state) { return state.range(0) == 0 ? hpke::kSuiteX25519 : hpke::kSuiteGmt; }

struct Fleet {
  e2e::KeyConfig config;
  e2e::KeyRing ring;
};

Fleet MakeFleet(hpke::Suite suite) {
  Fleet f;
  auto kp = hpke::GenerateKeyPair(suite.kem);
  if (!kp.ok()) std::abort();
  f.config = e2e::KeyConfig{1, suite, kp->pk};
  if (!f.ring.Add(e2e::EncodeKeyConfig(f.config), kp->sk.span()).ok()) std::abort();
  return f;
}

e2e::SealedRequest Seal(const Fleet& f, const e2e::ClientIdentity* client = nullptr) {
  auto sealed = e2e::SealRequest(f.config, "/v1/chat/completions", "m", true, "Bearer sk-bench", kRequest, client);
  if (!sealed.ok()) std::abort();
  return std::move(sealed).value();
}

std::string HeaderOf(const e2e::SealedRequest& s, const char* lower_name) {
  for (const auto& [name, value] : s.headers) {
    if (strcasecmp(name.c_str(), lower_name) == 0) return value;
  }
  return {};
}

void BM_SealRequest(benchmark::State& state) {
  Fleet f = MakeFleet(SuiteOf(state));
  for (auto _ : state) benchmark::DoNotOptimize(Seal(f));
  state.SetLabel(std::string(hpke::SuiteName(SuiteOf(state))));
}

// Mutual mode: the same, sealed with the client's attested HPKE key (auth
// mode: one key agreement more). The token and key statement are headers
// here, of realistic size; verifying them is the replica's work.
void BM_SealRequestMutual(benchmark::State& state) {
  Fleet f = MakeFleet(SuiteOf(state));
  auto kp = hpke::GenerateKeyPair(SuiteOf(state).kem);
  if (!kp.ok()) std::abort();
  e2e::ClientIdentity client;
  client.token = std::string(900, 't');
  client.key_jws = std::string(400, 'j');
  client.sk = std::move(kp->sk);
  for (auto _ : state) benchmark::DoNotOptimize(Seal(f, &client));
  state.SetLabel(std::string(hpke::SuiteName(SuiteOf(state))));
}

// What `cllm proxy` adds to a mutual-mode request by sealing on a thread of
// its own: a coroutine on the I/O thread hands a function to a one-thread
// pool and resumes with its result (the OffLoop pattern). Arg 0: the same
// coroutine calling the function inline; the difference is the hop.
void BM_SealThreadHop(benchmark::State& state) {
  namespace asio = boost::asio;
  asio::io_context ioc;
  asio::thread_pool pool(1);
  const bool hop = state.range(0) == 1;
  int calls = 0;
  auto work = [&calls] { return ++calls; };
  for (auto _ : state) {
    auto request = [&]() -> asio::awaitable<void> {
      if (!hop) {
        benchmark::DoNotOptimize(work());
        co_return;
      }
      auto task = [&]() -> asio::awaitable<std::optional<int>> { co_return work(); };
      std::optional<int> r = co_await asio::co_spawn(pool, task, asio::use_awaitable);
      benchmark::DoNotOptimize(r);
    };
    asio::co_spawn(ioc, request, asio::detached);
    ioc.run();
    ioc.restart();
  }
  pool.join();
  state.SetLabel(hop ? "on the sealing thread" : "inline");
}

void BM_OpenRequest(benchmark::State& state) {
  Fleet f = MakeFleet(SuiteOf(state));
  const e2e::SealedRequest sealed = Seal(f);
  const std::string model = HeaderOf(sealed, e2e::kModelHeader), stream = HeaderOf(sealed, e2e::kStreamHeader),
                    size = HeaderOf(sealed, e2e::kSizeHeader);
  e2e::OpenOptions options;
  options.keys = &f.ring;
  for (auto _ : state) {
    e2e::EncryptedRequest in;
    in.path = "/v1/chat/completions";
    in.model_header = model;
    in.stream_header = stream;
    in.size_header = size;
    in.body = sealed.body;
    auto opened = e2e::OpenRequest(in, options);
    if (!opened.ok()) {
      state.SkipWithError("open failed");
      return;
    }
    benchmark::DoNotOptimize(opened);
  }
  state.SetLabel(std::string(hpke::SuiteName(SuiteOf(state))));
}

// One streamed token: the replica seals the event, the client opens it.
void BM_StreamFrame(benchmark::State& state) {
  Fleet f = MakeFleet(SuiteOf(state));
  const e2e::SealedRequest sealed = Seal(f);
  auto sealer = e2e::ResponseSealer::Create(sealed.response);
  auto opener = e2e::ResponseOpener::Create(sealed.response);
  if (!sealer.ok() || !opener.ok()) std::abort();
  for (auto _ : state) {
    auto frame = sealer->Seal(AsBytes(kEvent), false);
    if (!frame.ok()) {
      state.SkipWithError("seal failed");
      return;
    }
    auto frames = opener->Feed(*frame);
    if (!frames.ok() || frames->size() != 1) {
      state.SkipWithError("open failed");
      return;
    }
    benchmark::DoNotOptimize(frames);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kEvent.size()));
  state.SetLabel(std::string(hpke::SuiteName(SuiteOf(state))));
}

BENCHMARK(BM_SealRequest)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SealRequestMutual)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SealThreadHop)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_OpenRequest)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_StreamFrame)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
