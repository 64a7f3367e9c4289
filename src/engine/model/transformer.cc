// The shared decoder-only transformer forward pass (llama, qwen2, qwen3, phi3).
//
// Shapes (n = batch entries):
//   x        [n, n_embd]     residual stream
//   q        [n, n_head · head_dim],  k, v [n, n_head_kv · head_dim]
//   ffn      [n, n_ff]
#include <algorithm>
#include <cmath>
#include <functional>

#include "engine/kernels/kernels.h"
#include "engine/kernels/thread_pool.h"
#include "engine/model/model.h"
#include "engine/model/op_profile.h"
#include "engine/model/ops.h"

namespace cllm::engine {

ModelResult<std::unique_ptr<Model>> Model::Load(GgufFile file) {
  CLLM_ASSIGN_OR_RETURN(ModelConfig config, ConfigFromGguf(file));
  CLLM_ASSIGN_OR_RETURN(ModelWeights weights, BindWeights(file, config));
  weights.packed_bytes = PackWeights(weights, file);
  auto tok = Tokenizer::FromGguf(file);
  if (!tok.ok()) return MakeError(ModelErrc::kTokenizer, tok.detail());
  if ((*tok)->n_vocab() != config.n_vocab) return MakeError(ModelErrc::kBadHparams, "vocabulary size mismatch");
  return std::unique_ptr<Model>(new Model(std::move(file), std::move(config), std::move(weights), std::move(tok).value()));
}

ModelResult<std::unique_ptr<Model>> Model::Open(const std::filesystem::path& path) {
  auto f = GgufFile::Open(path);
  if (!f.ok()) return MakeError(ModelErrc::kBadFile, std::string(GgufErrcName(f.code())) + ": " + f.detail());
  return Load(std::move(f).value());
}

ModelResult<Ok> Model::TokenEmbedding(TokenId id, std::span<float> out) const {
  const ModelConfig& c = config_;
  if (id < 0 || id >= c.n_vocab) return MakeError(ModelErrc::kBadBatch, "token id " + std::to_string(id) + " out of range");
  if (out.size() != static_cast<size_t>(c.n_embd)) return MakeError(ModelErrc::kBadBatch, "embedding row is not n_embd floats");
  DequantizeMatrixRow(weights_.token_embd.type, weights_.token_embd.data, id, c.n_embd, out.data());
  return OkStatus();
}

namespace {

void MatMulRef(const WeightRef& w, const float* x, int n, float* out) {
  MatMul(w.type, w.data, w.n_rows, w.n_cols, x, n, out);
}

// Spec is one matrix of a MatMulGroup (q/k/v, gate/up: one activation
// rounding and one pool job for the group).
MatMulSpec Spec(const WeightRef& w, float* out) { return {w.type, w.data, w.n_rows, out}; }

// ForTokens runs fn(t0, t1) over a batch's tokens [0, n), split across the
// engine's workers once the batch holds enough work to pay for a dispatch
// (`per_token` floats touched per token): the per-token elementwise steps
// (norms, RoPE, SwiGLU, residuals) of a prefill otherwise run on one
// thread while the others wait. Each token's values come from one call with
// the same arithmetic, so the result does not depend on the split.
void ForTokens(int n, int64_t per_token, const std::function<void(int64_t, int64_t)>& fn) {
  constexpr int64_t kMinParallelFloats = 1 << 13;
  if (n < 2 || int64_t{n} * per_token < kMinParallelFloats) return fn(0, n);
  ParallelFor(n, 1, fn);
}

void AddBias(float* x, const std::vector<float>& b, int n) {
  if (b.empty()) return;
  const int d = static_cast<int>(b.size());
  for (int t = 0; t < n; ++t) {
    for (int i = 0; i < d; ++i) x[t * d + i] += b[i];
  }
}

}  // namespace

// Attention runs one (sequence, KV head) pair per work unit on the engine
// thread pool: the unit loads that head's keys and values once (every batch
// entry of the sequence reads them: a prefill's entries share one load) and
// computes the query heads that share them (GQA) for each of the sequence's
// entries, over its causal prefix, in one AttendHeads call (each key and
// value row is read once per tile of queries, not once per query). The arithmetic per entry and head is the
// same whatever the batch or the split, so results do not depend on them.
// A decode step (a few entries per sequence) reads keys and values where
// they sit in the cache, F16 converted in registers; a prefill (many
// entries sharing them) first copies them to F32 once. Both give the same
// bits (the conversion is exact; AttendHead's arithmetic is the same).
void Model::Attention(int layer, const std::vector<BatchEntry>& batch, const KvCache& cache, const float* q,
                      float* out) const {
  const ModelConfig& c = config_;
  const int hd = c.head_dim, q_dim = c.n_head * hd;
  const int group = c.n_head / c.n_head_kv;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  constexpr size_t kCopyEntries = 4;  // more entries of one sequence: copy K/V to F32 once

  std::map<int, std::vector<size_t>> by_seq;  // seq → its batch entries
  for (size_t e = 0; e < batch.size(); ++e) by_seq[batch[e].seq].push_back(e);
  std::vector<const std::pair<const int, std::vector<size_t>>*> seqs;
  int64_t work = 0;  // multiply-adds, to keep tiny models on one thread
  for (const auto& s : by_seq) {
    seqs.push_back(&s);
    for (size_t e : s.second) work += static_cast<int64_t>(batch[e].pos + 1) * q_dim * 2;
  }
  const int64_t n_units = static_cast<int64_t>(seqs.size()) * c.n_head_kv;

  auto run_units = [&](int64_t u0, int64_t u1) {
    std::vector<float> k, v, scores;  // k, v: [len, hd] of one head (F32 copies); scores: [queries, len]
    std::vector<AttnQuery> queries;
    std::vector<const void*> k_blocks, v_blocks;
    const void* k_block = nullptr;
    const void* v_block = nullptr;
    for (int64_t u = u0; u < u1; ++u) {
      const auto& [seq, entries] = *seqs[static_cast<size_t>(u / c.n_head_kv)];
      const int kvh = static_cast<int>(u % c.n_head_kv);
      int n_pos = 0;
      for (size_t e : entries) n_pos = std::max(n_pos, batch[e].pos + 1);
      KvRows k_rows, v_rows;
      if (entries.size() > kCopyEntries) {
        k.resize(static_cast<size_t>(n_pos) * hd);
        v.resize(k.size());
        cache.LoadPositions(layer, 0, seq, n_pos, kvh * hd, hd, k.data());
        cache.LoadPositions(layer, 1, seq, n_pos, kvh * hd, hd, v.data());
        k_block = k.data();
        v_block = v.data();
        k_rows = KvRows{&k_block, std::max(n_pos, 1), hd, false};
        v_rows = KvRows{&v_block, std::max(n_pos, 1), hd, false};
      } else {
        k_rows = cache.Rows(layer, 0, seq, n_pos, kvh * hd, &k_blocks);
        v_rows = cache.Rows(layer, 1, seq, n_pos, kvh * hd, &v_blocks);
      }
      // every (entry, head) of this KV head in one call: rows loaded once per tile of queries
      queries.clear();
      for (size_t e : entries) {
        const int len = batch[e].pos + 1;  // causal: positions 0..pos of this sequence
        for (int g = 0; g < group; ++g) {
          const int h = kvh * group + g;
          queries.push_back(AttnQuery{q + e * q_dim + h * hd, len, out + e * q_dim + h * hd});
        }
      }
      // a few queries per call keep the scores scratch in L1/L2
      constexpr size_t kQueriesPerCall = 8;
      scores.resize(std::min(queries.size(), kQueriesPerCall) * static_cast<size_t>(n_pos));
      for (size_t i = 0; i < queries.size(); i += kQueriesPerCall) {
        const size_t m = std::min(kQueriesPerCall, queries.size() - i);
        AttendHeads(queries.data() + i, static_cast<int64_t>(m), k_rows, v_rows, hd, scale, scores.data());
      }
    }
  };
  if (work < (1 << 15)) return run_units(0, n_units);
  ParallelFor(n_units, 1, run_units);
}

ModelResult<Ok> Model::Forward(const std::vector<BatchEntry>& batch, KvCache& cache, std::vector<float>* out_logits,
                               std::vector<float>* out_hidden) const {
  const ModelConfig& c = config_;
  const int n = static_cast<int>(batch.size());
  if (n == 0) return OkStatus();

  // --- validate the batch and reserve KV space ------------------------------
  std::map<int, int> next_pos;   // seq → expected next position within this batch
  std::map<int, int> first_pos;  // seq → its first position in this batch
  for (const BatchEntry& b : batch) {
    if (b.embedding == nullptr && (b.token < 0 || b.token >= c.n_vocab)) {
      return MakeError(ModelErrc::kBadBatch, "token id " + std::to_string(b.token) + " out of range");
    }
    auto it = next_pos.find(b.seq);
    int expected = it == next_pos.end() ? cache.Length(b.seq) : it->second;
    bool first = it == next_pos.end();
    if (b.pos < 0 || (first ? b.pos > expected : b.pos != expected)) {
      return MakeError(ModelErrc::kBadBatch, "sequence " + std::to_string(b.seq) + ": position " +
                                                 std::to_string(b.pos) + " does not continue it (expected " +
                                                 std::to_string(expected) + ")");
    }
    if (first) first_pos[b.seq] = b.pos;
    next_pos[b.seq] = b.pos + 1;
  }
  for (const auto& [seq, end] : next_pos) {
    CLLM_RETURN_IF_ERROR(cache.Prepare(seq, end));
    // A rewind into blocks shared with the prompt cache writes into copies.
    CLLM_RETURN_IF_ERROR(cache.Unshare(seq, first_pos.at(seq), end));
  }

  const int q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim;
  std::vector<float> x(static_cast<size_t>(n) * c.n_embd), xn(x.size());
  std::vector<float> q(static_cast<size_t>(n) * q_dim), k(static_cast<size_t>(n) * kv_dim), v(k.size());
  std::vector<float> attn(q.size()), proj(x.size());
  std::vector<float> gate(static_cast<size_t>(n) * c.n_ff), up(gate.size());  // SwiGLU overwrites gate

  {
    OpTimer timer(Op::kEmbed);
    for (int t = 0; t < n; ++t) {
      float* dst = &x[static_cast<size_t>(t) * c.n_embd];
      if (batch[t].embedding != nullptr) {
        std::copy(batch[t].embedding, batch[t].embedding + c.n_embd, dst);
        continue;
      }
      DequantizeMatrixRow(weights_.token_embd.type, weights_.token_embd.data, batch[t].token, c.n_embd, dst);
    }
  }
  // Rotary factors per entry, shared by every head and layer: [n, n_rot / 2, 2].
  const size_t rope_stride = static_cast<size_t>(c.n_rot / 2) * 2;
  std::vector<float> rope_cs(static_cast<size_t>(n) * rope_stride);
  {
    OpTimer timer(Op::kQkNormRope);
    ops::RopeScaling scaling;
    scaling.freq_factors = weights_.RopeFactorsFor(cache.max_positions(), c.n_ctx_orig);
    scaling.freq_scale = c.rope_freq_scale;
    scaling.mscale = c.rope_attn_factor;
    for (int t = 0; t < n; ++t) {
      ops::RopeCosSin(c.n_rot, batch[t].pos, c.rope_base, scaling, &rope_cs[t * rope_stride]);
    }
  }
  auto rms_norm_all = [&](const std::vector<float>& weight) {
    OpTimer timer(Op::kNorm);
    ForTokens(n, c.n_embd, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) ops::RmsNorm(&x[t * c.n_embd], weight.data(), c.n_embd, c.rms_eps, &xn[t * c.n_embd]);
    });
  };
  auto add_residual = [&] {
    OpTimer timer(Op::kResidual);
    ForTokens(n, c.n_embd, [&](int64_t t0, int64_t t1) {
      for (size_t i = t0 * c.n_embd; i < static_cast<size_t>(t1 * c.n_embd); ++i) x[i] += proj[i];
    });
  };

  for (int l = 0; l < c.n_layer; ++l) {
    const LayerWeights& w = weights_.layers[l];
    // --- attention ----------------------------------------------------------
    rms_norm_all(w.attn_norm);
    {
      OpTimer timer(Op::kMatMulQkv);
      const MatMulSpec qkv[] = {Spec(w.wq, q.data()), Spec(w.wk, k.data()), Spec(w.wv, v.data())};
      MatMulGroup(qkv, 3, c.n_embd, xn.data(), n);
    }
    {
      OpTimer timer(Op::kResidual);
      AddBias(q.data(), w.bq, n);
      AddBias(k.data(), w.bk, n);
      AddBias(v.data(), w.bv, n);
    }
    {
      OpTimer timer(Op::kQkNormRope);
      ForTokens(n, q_dim + kv_dim, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
          const float* cs = &rope_cs[t * rope_stride];
          for (int h = 0; h < c.n_head; ++h) {
            float* qh = &q[static_cast<size_t>(t) * q_dim + h * c.head_dim];
            if (c.qk_norm) ops::RmsNorm(qh, w.q_norm.data(), c.head_dim, c.rms_eps, qh);
            ops::RopeApply(qh, c.n_rot, cs, c.rope);
          }
          for (int h = 0; h < c.n_head_kv; ++h) {
            float* kh = &k[static_cast<size_t>(t) * kv_dim + h * c.head_dim];
            if (c.qk_norm) ops::RmsNorm(kh, w.k_norm.data(), c.head_dim, c.rms_eps, kh);
            ops::RopeApply(kh, c.n_rot, cs, c.rope);
          }
        }
      });
    }
    {
      OpTimer timer(Op::kKvStore);
      for (int t = 0; t < n; ++t) {
        cache.Store(l, 0, batch[t].seq, batch[t].pos, &k[static_cast<size_t>(t) * kv_dim]);
        cache.Store(l, 1, batch[t].seq, batch[t].pos, &v[static_cast<size_t>(t) * kv_dim]);
      }
    }
    {
      OpTimer timer(Op::kAttention);
      Attention(l, batch, cache, q.data(), attn.data());
    }
    {
      OpTimer timer(Op::kMatMulO);
      MatMulRef(w.wo, attn.data(), n, proj.data());
    }
    add_residual();
    // --- feed-forward (SwiGLU) ---------------------------------------------
    rms_norm_all(w.ffn_norm);
    {
      OpTimer timer(Op::kMatMulGateUp);
      const MatMulSpec gate_up[] = {Spec(w.w_gate, gate.data()), Spec(w.w_up, up.data())};
      MatMulGroup(gate_up, 2, c.n_embd, xn.data(), n);
    }
    {
      OpTimer timer(Op::kSwiGlu);
      ForTokens(n, c.n_ff, [&](int64_t t0, int64_t t1) {
        const size_t off = static_cast<size_t>(t0) * c.n_ff;
        SwiGluRow(gate.data() + off, up.data() + off, (t1 - t0) * c.n_ff, gate.data() + off);
      });
    }
    {
      OpTimer timer(Op::kMatMulDown);
      MatMulRef(w.w_down, gate.data(), n, proj.data());
    }
    add_residual();
  }
  for (const auto& [seq, end] : next_pos) cache.SetLength(seq, end);

  // --- hidden states (embeddings) -------------------------------------------
  if (out_hidden != nullptr) {
    OpTimer timer(Op::kNorm);
    const size_t start = out_hidden->size();
    out_hidden->resize(start + x.size());
    for (int t = 0; t < n; ++t) {
      ops::RmsNorm(&x[t * c.n_embd], weights_.output_norm.data(), c.n_embd, c.rms_eps,
                   out_hidden->data() + start + static_cast<size_t>(t) * c.n_embd);
    }
  }
  // --- logits for the entries that asked ------------------------------------
  std::vector<float> rows;
  int n_out = 0;
  for (int t = 0; t < n; ++t) {
    if (!batch[t].logits) continue;
    rows.resize(static_cast<size_t>(n_out + 1) * c.n_embd);
    ops::RmsNorm(&x[t * c.n_embd], weights_.output_norm.data(), c.n_embd, c.rms_eps, &rows[static_cast<size_t>(n_out) * c.n_embd]);
    ++n_out;
  }
  if (n_out > 0 && out_logits != nullptr) {
    OpTimer timer(Op::kOutput);
    size_t start = out_logits->size();
    out_logits->resize(start + static_cast<size_t>(n_out) * c.n_vocab);
    MatMulRef(weights_.output, rows.data(), n_out, out_logits->data() + start);
  }
  return OkStatus();
}

}  // namespace cllm::engine
