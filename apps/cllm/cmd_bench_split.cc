// `cllm bench split -m MODEL --text FILE [--epsilons 0.5,1,2,4,8,inf] ...`
//
// The evaluation of split inference (issue 16 item 4, docs/split-inference.md):
// what Report-Noisy-Max costs in answer quality and what it hides from a
// server that decodes the embeddings it receives. Prompts are windows of a
// fixed text; for every ε, every prompt and every repetition the client step
// (split::ApplyRnm over the prompt, then the rows of the chosen tokens) runs
// with a seeded CSPRNG stream, so a rerun prints the same figures.
//
// Per ε it reports:
//   replaced   fraction of perturbed prompt positions whose token changed
//   agree      fraction of greedy continuation positions equal to the
//              noise-free continuation (same model, rows of the true prompt)
//   exact      fraction of prompts whose whole greedy continuation is equal
//   loss       mean negative log-likelihood (nats/token) of the text's true
//              continuation after the received prompt (teacher forcing)
//   recovered  fraction of perturbed positions where the server's nearest-row
//              decoding (cosine over token_embd) gives the original token
//   client     the client's share of the request: RNM + row lookup, against
//              that plus the server's prefill and greedy decode, in process
#include <nlohmann/json.hpp>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "apps/cllm/command.h"
#include "client/split/rnm.h"
#include "engine/kernels/thread_pool.h"
#include "engine/model/kv_cache.h"
#include "engine/model/model.h"

namespace cllm::app {
namespace {

using Clock = std::chrono::steady_clock;
using engine::TokenId;

struct Args {
  std::string model, text, epsilons = "0.5,1,2,4,8,inf", mask = "all";
  int k = 20, prompts = 16, prompt_tokens = 24, continuation = 24, generate = 24, repeats = 4, threads = 1;
  uint64_t seed = 1;
  bool json = false;
};

double Seconds(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Window is one evaluation prompt: BOS + prompt tokens, then the text's own
// continuation.
struct Window {
  std::vector<uint32_t> prompt;
  std::vector<TokenId> continuation;
  std::vector<uint8_t> perturb;  // BOS stays exact: it is public
};

// Embedded is what the server receives: n × n_embd rows.
struct Server {
  const engine::Model& model;
  int n_embd;

  std::vector<engine::BatchEntry> Prefill(const std::vector<float>& rows, bool logits_last) const {
    const size_t n = rows.size() / static_cast<size_t>(n_embd);
    std::vector<engine::BatchEntry> batch(n);
    for (size_t i = 0; i < n; ++i) {
      batch[i] = {0, static_cast<int>(i), -1, logits_last && i + 1 == n, rows.data() + i * static_cast<size_t>(n_embd)};
    }
    return batch;
  }

  static TokenId ArgMax(std::span<const float> logits) {
    return static_cast<TokenId>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  }

  // Greedy decodes `n` tokens after the received rows.
  Result<std::vector<TokenId>> Greedy(const std::vector<float>& rows, int n) const {
    const int n_prompt = static_cast<int>(rows.size() / static_cast<size_t>(n_embd));
    engine::KvCache cache(model.config(), engine::KvType::kF16, n_prompt + n + 1);
    std::vector<float> logits;
    if (auto r = model.Forward(Prefill(rows, true), cache, &logits); !r.ok()) return MakeError(Errc::kInternal, r.detail());
    std::vector<TokenId> out;
    for (int i = 0; i < n; ++i) {
      out.push_back(ArgMax(logits));
      if (i + 1 == n) break;
      logits.clear();
      if (auto r = model.Forward({{0, n_prompt + i, out.back(), true}}, cache, &logits); !r.ok()) {
        return MakeError(Errc::kInternal, r.detail());
      }
    }
    return out;
  }

  // Loss is the mean NLL of `cont` after the received rows.
  Result<double> Loss(const std::vector<float>& rows, const std::vector<TokenId>& cont) const {
    const int n_prompt = static_cast<int>(rows.size() / static_cast<size_t>(n_embd));
    engine::KvCache cache(model.config(), engine::KvType::kF16, n_prompt + static_cast<int>(cont.size()) + 1);
    std::vector<engine::BatchEntry> batch = Prefill(rows, true);
    for (size_t j = 0; j + 1 < cont.size(); ++j) batch.push_back({0, n_prompt + static_cast<int>(j), cont[j], true});
    std::vector<float> logits;
    if (auto r = model.Forward(batch, cache, &logits); !r.ok()) return MakeError(Errc::kInternal, r.detail());
    const size_t v = static_cast<size_t>(model.config().n_vocab);
    double nll = 0;
    for (size_t j = 0; j < cont.size(); ++j) {
      std::span<const float> l(logits.data() + j * v, v);
      const float max = *std::max_element(l.begin(), l.end());
      double sum = 0;
      for (float x : l) sum += std::exp(static_cast<double>(x - max));
      nll += std::log(sum) - static_cast<double>(l[static_cast<size_t>(cont[j])] - max);
    }
    return nll / static_cast<double>(cont.size());
  }
};

struct Row {
  double epsilon = 0;
  double positions = 0, replaced = 0, recovered = 0, agree = 0, exact = 0, loss = 0, runs = 0;
  double client_s = 0, server_s = 0, budget = 0;
};

Result<std::vector<double>> ParseEpsilons(const std::string& list) {
  std::vector<double> out;
  std::stringstream ss(list);
  for (std::string item; std::getline(ss, item, ',');) {
    if (item == "inf" || item == "∞") {
      out.push_back(split::kNoNoise);
      continue;
    }
    char* end = nullptr;
    const double e = std::strtod(item.c_str(), &end);
    if (item.empty() || end != item.c_str() + item.size() || !(e > 0) || !std::isfinite(e)) {
      return MakeError(Errc::kInvalidArgument, "--epsilons: '" + item + "' is not a positive number or inf");
    }
    out.push_back(e);
  }
  if (out.empty()) return MakeError(Errc::kInvalidArgument, "--epsilons is empty");
  return out;
}

// SeedFor derives the 32-byte stream seed of one (ε, prompt, repetition),
// keyed on ε's value so a row does not depend on the rest of --epsilons.
std::array<uint8_t, 32> SeedFor(uint64_t seed, double epsilon, size_t p, size_t r) {
  std::array<uint8_t, 32> s{};
  const uint64_t parts[4] = {seed, std::bit_cast<uint64_t>(epsilon), p, r};
  for (size_t i = 0; i < 4; ++i) {
    for (size_t b = 0; b < 8; ++b) s[i * 8 + b] = static_cast<uint8_t>(parts[i] >> (8 * b));
  }
  return s;
}

int Run(const Args& a) {
  auto epsilons = ParseEpsilons(a.epsilons);
  if (!epsilons.ok()) return Fail(epsilons.detail());
  std::ifstream in(a.text, std::ios::binary);
  if (!in) return Fail("cannot read " + a.text);
  std::stringstream ss;
  ss << in.rdbuf();
  engine::SetNumThreads(a.threads);
  auto opened = engine::Model::Open(a.model);
  if (!opened.ok()) return Fail(opened.detail());
  const engine::Model& model = **opened;
  const engine::Tokenizer& tok = model.tokenizer();
  const auto& cfg = model.config();
  const int window = 1 + a.prompt_tokens + std::max(a.continuation, a.generate);
  if (window > cfg.n_ctx_train) {
    return Fail("a window of " + std::to_string(window) + " tokens exceeds the model's context " +
                std::to_string(cfg.n_ctx_train));
  }

  // The client's table: every row as the engine dequantizes it.
  const uint32_t n_vocab = static_cast<uint32_t>(cfg.n_vocab), dim = static_cast<uint32_t>(cfg.n_embd);
  std::vector<float> rows(static_cast<size_t>(n_vocab) * dim);
  for (uint32_t t = 0; t < n_vocab; ++t) {
    if (auto r = model.TokenEmbedding(static_cast<TokenId>(t), std::span(rows).subspan(size_t{t} * dim, dim)); !r.ok()) {
      return Fail(r.detail());
    }
  }
  auto table = split::EmbeddingTable::Create(n_vocab, dim, std::move(rows));
  if (!table.ok()) return Fail(std::string("embedding table: ") + split::SplitErrcName(table.code()));
  if (a.k > static_cast<int>(n_vocab)) return Fail("--k exceeds the vocabulary");

  // Windows spread evenly over the text.
  const std::vector<TokenId> text = tok.Encode(ss.str(), false, false);
  const int span = a.prompt_tokens + a.continuation;
  if (static_cast<int>(text.size()) < span) return Fail("--text is shorter than one window");
  const int n_windows = std::min(a.prompts, static_cast<int>(text.size()) - span + 1);
  const size_t stride = n_windows > 1 ? (text.size() - static_cast<size_t>(span)) / static_cast<size_t>(n_windows - 1) : 0;
  std::vector<Window> windows;
  for (int w = 0; w < n_windows; ++w) {
    Window win;
    const size_t start = static_cast<size_t>(w) * stride;
    if (tok.bos() >= 0) {
      win.prompt.push_back(static_cast<uint32_t>(tok.bos()));
      win.perturb.push_back(0);
    }
    std::vector<std::string> pieces;
    for (int i = 0; i < a.prompt_tokens; ++i) {
      win.prompt.push_back(static_cast<uint32_t>(text[start + static_cast<size_t>(i)]));
      pieces.push_back(tok.TokenToPiece(text[start + static_cast<size_t>(i)]));
    }
    std::vector<uint8_t> chosen = a.mask == "digits" ? split::MaskDigits(pieces) : std::vector<uint8_t>(pieces.size(), 1);
    win.perturb.insert(win.perturb.end(), chosen.begin(), chosen.end());
    win.continuation.assign(text.begin() + static_cast<std::ptrdiff_t>(start) + a.prompt_tokens,
                            text.begin() + static_cast<std::ptrdiff_t>(start) + span);
    windows.push_back(std::move(win));
  }

  const Server server{model, cfg.n_embd};
  // The noise-free answers every ε is compared with.
  std::vector<std::vector<TokenId>> plain;
  for (const Window& w : windows) {
    auto g = server.Greedy(table->Gather(w.prompt).value(), a.generate);
    if (!g.ok()) return Fail(g.detail());
    plain.push_back(std::move(*g));
  }

  std::vector<Row> results;
  for (size_t e = 0; e < epsilons->size(); ++e) {
    Row row;
    row.epsilon = (*epsilons)[e];
    for (size_t p = 0; p < windows.size(); ++p) {
      const Window& w = windows[p];
      for (int r = 0; r < a.repeats; ++r) {
        split::SeededRandom random(SeedFor(a.seed, row.epsilon, p, static_cast<size_t>(r)));
        auto t0 = Clock::now();
        auto rnm = split::ApplyRnm(*table, w.prompt, w.perturb, {row.epsilon, static_cast<uint32_t>(a.k)}, random);
        if (!rnm.ok()) return Fail(std::string("RNM: ") + split::SplitErrcName(rnm.code()));
        auto sent = table->Gather(rnm->ids);
        if (!sent.ok()) return Fail(std::string("rows: ") + split::SplitErrcName(sent.code()));
        row.client_s += Seconds(t0);

        t0 = Clock::now();
        auto answer = server.Greedy(*sent, a.generate);
        if (!answer.ok()) return Fail(answer.detail());
        row.server_s += Seconds(t0);
        auto loss = server.Loss(*sent, w.continuation);
        if (!loss.ok()) return Fail(loss.detail());

        // The server's inversion: nearest row of each received vector.
        for (size_t i = 0; i < w.prompt.size(); ++i) {
          if (w.perturb[i] == 0) continue;
          auto guess = table->Nearest(std::span(*sent).subspan(i * dim, dim), 1);
          if (!guess.ok()) return Fail(std::string("decode: ") + split::SplitErrcName(guess.code()));
          row.positions += 1;
          row.replaced += rnm->ids[i] != w.prompt[i] ? 1 : 0;
          row.recovered += (*guess)[0].id == w.prompt[i] ? 1 : 0;
        }
        size_t same = 0;
        for (size_t i = 0; i < answer->size(); ++i) same += (*answer)[i] == plain[p][i] ? 1 : 0;
        row.agree += static_cast<double>(same) / static_cast<double>(answer->size());
        row.exact += same == answer->size() ? 1 : 0;
        row.loss += *loss;
        row.budget += rnm->epsilon_total;
        row.runs += 1;
      }
    }
    results.push_back(row);
    if (!a.json) std::fprintf(stderr, "ε = %g done (%zu of %zu)\n", row.epsilon, e + 1, epsilons->size());
  }

  nlohmann::json out = nlohmann::json::array();
  if (!a.json) {
    std::printf("%d prompts × %d repetitions, %d prompt tokens (+BOS), k = %d, mask %s; agree/exact over %d greedy "
                "tokens; loss over the text's next %d tokens\n",
                n_windows, a.repeats, a.prompt_tokens, a.k, a.mask.c_str(), a.generate, a.continuation);
    std::printf("| ε | replaced | recovered | agree | exact | loss (nats) | ε per prompt | client share |\n");
    std::printf("|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  }
  for (const Row& r : results) {
    const double replaced = r.positions > 0 ? r.replaced / r.positions : 0;
    const double recovered = r.positions > 0 ? r.recovered / r.positions : 0;
    const double share = r.client_s / (r.client_s + r.server_s);
    const bool inf = std::isinf(r.epsilon);
    if (a.json) {
      out.push_back({{"epsilon", inf ? nlohmann::json("inf") : nlohmann::json(r.epsilon)},
                     {"replaced", replaced}, {"recovered", recovered}, {"agree", r.agree / r.runs},
                     {"exact", r.exact / r.runs}, {"loss", r.loss / r.runs},
                     {"epsilon_per_prompt", std::isinf(r.budget) ? nlohmann::json("inf") : nlohmann::json(r.budget / r.runs)},
                     {"client_share", share}, {"client_ms_per_request", 1e3 * r.client_s / r.runs},
                     {"server_ms_per_request", 1e3 * r.server_s / r.runs}});
      continue;
    }
    std::printf("| %s | %.3f | %.3f | %.3f | %.3f | %.3f | %s | %.2f%% |\n",
                inf ? "∞" : (std::ostringstream() << r.epsilon).str().c_str(), replaced, recovered, r.agree / r.runs,
                r.exact / r.runs, r.loss / r.runs,
                std::isinf(r.budget) ? "∞" : (std::ostringstream() << r.budget / r.runs).str().c_str(), 100 * share);
  }
  if (a.json) std::printf("%s\n", out.dump(2).c_str());
  return 0;
}

void Setup(CLI::App& app, CommandContext& ctx) {
  CLI::App* bench = SubcommandGroup(app, "bench", "Benchmarks");
  auto* cmd = bench->add_subcommand(
      "split", "Evaluate split inference: Report-Noisy-Max's cost in answers and what nearest-row decoding recovers");
  static Args a;
  cmd->add_option("-m,--model", a.model, "GGUF model file")->required()->check(CLI::ExistingFile);
  cmd->add_option("--text", a.text, "Text the prompts and true continuations are cut from")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--epsilons", a.epsilons, "Comma-separated ε per perturbed token; inf = no noise")
      ->capture_default_str();
  cmd->add_option("--k", a.k, "RNM candidates per token (the token itself included)")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  cmd->add_option("--mask", a.mask, "Positions perturbed: all (every prompt token but BOS) or digits")
      ->check(CLI::IsMember({"all", "digits"}))
      ->capture_default_str();
  cmd->add_option("--prompts", a.prompts, "Prompt windows, spread evenly over --text")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  cmd->add_option("--prompt-tokens", a.prompt_tokens, "Tokens per prompt (BOS added)")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--continuation", a.continuation, "True continuation tokens scored by the loss")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--generate", a.generate, "Greedy tokens compared with the noise-free answer")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("-r,--repeats", a.repeats, "RNM draws per prompt and ε")->check(CLI::Range(1, 10000))->capture_default_str();
  cmd->add_option("--seed", a.seed, "Seed of the noise streams (AES-256-CTR; figures are reproducible)")
      ->capture_default_str();
  cmd->add_option("-t,--threads", a.threads, "Threads")->check(CLI::Range(1, 1024))->capture_default_str();
  cmd->add_flag("--json", a.json, "Print one JSON array instead of the table");
  cmd->callback([&ctx] { ctx.exit_code = Run(a); });
}

CommandRegistration reg{"bench-split", 52, Setup};

}  // namespace
}  // namespace cllm::app
