#include "server/prompt_embeds.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <span>

#include "base/encoding.h"
#include "engine/kernels/kernels.h"

namespace cllm::server {
namespace {

using nlohmann::json;

ApiError TooLong(std::string message, std::string param) {
  ApiError e = MakeError(ApiErrc::kPromptEmbedsTooLong, std::move(message));
  e.param = std::move(param);
  return e;
}

// IsBase64Char: the standard alphabet (RFC 4648 §4). Base64Decode would skip
// whitespace and accept missing padding; the wire format is stricter.
bool IsBase64Char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

// CheckBase64Shape refuses anything but canonical padded base64: a multiple
// of 4 characters, alphabet characters, then at most two '='.
bool CheckBase64Shape(std::string_view text) {
  if (text.size() % 4 != 0) return false;
  size_t n = text.size();
  size_t pad = 0;
  while (pad < 2 && n > 0 && text[n - 1] == '=') --n, ++pad;
  for (size_t i = 0; i < n; ++i) {
    if (!IsBase64Char(text[i])) return false;
  }
  return true;
}

// Rows of template text: each id's row exactly as the engine embeds it.
ApiResult<Ok> AppendTokenRows(const engine::Model& model, const std::vector<engine::TokenId>& ids,
                              std::vector<float>* out) {
  const size_t n_embd = static_cast<size_t>(model.config().n_embd);
  for (engine::TokenId id : ids) {
    const size_t at = out->size();
    out->resize(at + n_embd);
    auto row = model.TokenEmbedding(id, std::span<float>(out->data() + at, n_embd));
    if (!row.ok()) return MakeError(ApiErrc::kInternal, "embedding a template token: " + row.detail());
  }
  return Ok{};
}

}  // namespace

// --- permission ------------------------------------------------------------------

bool ParsePromptEmbedsPolicy(std::string_view text, PromptEmbedsPolicy* out) {
  if (text == "off") {
    *out = PromptEmbedsPolicy::kOff;
  } else if (text == "api-key") {
    *out = PromptEmbedsPolicy::kApiKey;
  } else if (text == "mutual") {
    *out = PromptEmbedsPolicy::kMutual;
  } else {
    return false;
  }
  return true;
}

bool PromptEmbedsAllowed(PromptEmbedsPolicy policy, bool key_allows, bool e2e_mutual) {
  switch (policy) {
    case PromptEmbedsPolicy::kOff: return false;
    case PromptEmbedsPolicy::kApiKey: return key_allows;
    case PromptEmbedsPolicy::kMutual: return key_allows || e2e_mutual;
  }
  return false;
}

// --- parsing ------------------------------------------------------------------------

ApiError EmbedsInvalid(std::string message, std::string param) {
  ApiError e = MakeError(ApiErrc::kPromptEmbedsInvalid, std::move(message));
  e.param = std::move(param);
  return e;
}

ApiResult<EmbedsDtype> ParseEmbedsDtype(const json& obj, const std::string& key) {
  auto it = obj.find(key);
  if (it == obj.end()) return EmbedsDtype::kFloat32;
  if (it->is_string() && it->get_ref<const std::string&>() == "float32") return EmbedsDtype::kFloat32;
  if (it->is_string() && it->get_ref<const std::string&>() == "float16") return EmbedsDtype::kFloat16;
  return EmbedsInvalid("'" + key + "' must be \"float32\" or \"float16\"", key);
}

ApiResult<PromptEmbedsInput> ParseEmbedsPart(const json& part, const std::string& where) {
  for (const auto& [key, v] : part.items()) {
    if (key != "type" && key != "prompt_embeds" && key != "prompt_embeds_dtype") {
      return EmbedsInvalid("unknown field '" + where + "." + key + "'", where);
    }
  }
  auto data = part.find("prompt_embeds");
  if (data == part.end() || !data->is_string()) {
    return EmbedsInvalid("'" + where + ".prompt_embeds' must be a string (base64)", where);
  }
  PromptEmbedsInput in;
  auto dtype = ParseEmbedsDtype(part, "prompt_embeds_dtype");
  if (!dtype.ok()) return EmbedsInvalid("'" + where + ".prompt_embeds_dtype' must be \"float32\" or \"float16\"", where);
  in.dtype = *dtype;
  in.base64 = data->get<std::string>();
  return in;
}

// --- decoding -------------------------------------------------------------------------

size_t MaxEmbedsBase64Chars(int context, int n_embd, size_t value_bytes) {
  // context and n_embd are the server's own (each < 2^31): the product fits.
  const uint64_t max_bytes = static_cast<uint64_t>(context) * static_cast<uint64_t>(n_embd) * value_bytes;
  return static_cast<size_t>((max_bytes + 2) / 3 * 4);
}

ApiResult<Ok> DecodePromptEmbeds(const PromptEmbedsInput& in, int n_embd, int context, const std::string& param,
                                 std::vector<float>* out) {
  // 1. The length, before a byte is decoded: an oversized matrix costs no
  //    memory beyond the body the transport already limited.
  const size_t elem = in.dtype == EmbedsDtype::kFloat16 ? 2 : 4;
  const size_t max_chars = MaxEmbedsBase64Chars(context, n_embd, elem);
  if (in.base64.size() > max_chars) {
    return TooLong("'" + param + "' is " + std::to_string(in.base64.size()) + " base64 characters; at most " +
                       std::to_string(max_chars) + " (" + std::to_string(context) + " rows of " +
                       std::to_string(n_embd) + (elem == 2 ? " float16)" : " float32)"),
                   param);
  }
  // 2. Canonical padded base64 (RFC 4648 §4).
  if (!CheckBase64Shape(in.base64)) return EmbedsInvalid("'" + param + "' is not padded standard base64", param);
  auto bytes = Base64Decode(in.base64);
  if (!bytes.ok()) return EmbedsInvalid("'" + param + "' is not valid base64", param);
  // 3. Whole rows, at least one.
  const size_t row_bytes = static_cast<size_t>(n_embd) * elem;
  if (bytes->empty() || bytes->size() % row_bytes != 0) {
    return EmbedsInvalid("'" + param + "' holds " + std::to_string(bytes->size()) +
                             " bytes, not a non-zero whole number of rows of " + std::to_string(n_embd) + " " +
                             (elem == 2 ? "float16" : "float32") + " (" + std::to_string(row_bytes) + " bytes)",
                         param);
  }
  // 4. Little-endian values, float16 widened exactly (subnormals, ±Inf and
  //    NaN keep their meaning), then every value finite: a NaN or Inf row
  //    would poison every later position's attention.
  const size_t count = bytes->size() / elem;
  const size_t at = out->size();
  out->resize(at + count);
  float* dst = out->data() + at;
  const uint8_t* src = bytes->data();
  for (size_t i = 0; i < count; ++i) {
    float f;
    if (elem == 2) {
      const uint16_t h = static_cast<uint16_t>(src[2 * i] | (src[2 * i + 1] << 8));
      f = engine::F16ToF32(h);
    } else {
      const uint32_t u = static_cast<uint32_t>(src[4 * i]) | (static_cast<uint32_t>(src[4 * i + 1]) << 8) |
                         (static_cast<uint32_t>(src[4 * i + 2]) << 16) | (static_cast<uint32_t>(src[4 * i + 3]) << 24);
      std::memcpy(&f, &u, sizeof f);
    }
    if (!std::isfinite(f)) {
      out->resize(at);
      return EmbedsInvalid("'" + param + "' row " + std::to_string(i / static_cast<size_t>(n_embd)) +
                               " holds a NaN or infinite value",
                           param);
    }
    dst[i] = f;
  }
  return Ok{};
}

// --- chat ----------------------------------------------------------------------------------

ApiResult<std::shared_ptr<const std::vector<float>>> ChatPromptEmbeds(const engine::Model& model, int context,
                                                                      const engine::ChatText& rendered,
                                                                      const std::vector<std::string>& placeholders,
                                                                      const std::vector<PromptEmbedsInput>& parts) {
  const std::string& text = rendered.text;
  const int n_embd = model.config().n_embd;
  // Where each placeholder stands: exactly once, in order. A template that
  // drops, repeats or rewrites message content cannot carry rows.
  std::vector<size_t> cuts;
  size_t from = 0;
  for (const std::string& p : placeholders) {
    const size_t at = text.find(p, from);
    if (at == std::string::npos || text.find(p) != at || text.find(p, at + p.size()) != std::string::npos) {
      return EmbedsInvalid("the chat template does not place each prompt_embeds part exactly once", "messages");
    }
    cuts.push_back(at);
    from = at + p.size();
  }
  // BOS/EOS as the tokenizer adds them to a whole prompt: once, at the ends.
  const engine::Tokenizer& tok = model.tokenizer();
  const std::vector<engine::TokenId> specials = tok.Encode("", /*add_special=*/true, /*parse_special=*/false);
  const bool add_bos = !specials.empty() && specials.front() == tok.bos() && tok.bos() >= 0;
  const bool add_eos = !specials.empty() && specials.back() == tok.eos() && tok.eos() >= 0 &&
                       (specials.size() > 1 || !add_bos);

  auto out = std::make_shared<std::vector<float>>();
  std::vector<engine::TokenId> ids;
  if (add_bos) ids.push_back(tok.bos());
  size_t begin = 0;
  // Text piece [begin, end), with the markup spans inside it moved to it.
  auto piece = [&](size_t end) {
    std::vector<engine::TextSpan> spans;
    for (const auto& s : rendered.markup) {
      // Placeholders are request content, never markup, so no span crosses a cut.
      if (s.begin >= begin && s.end <= end) spans.push_back({s.begin - begin, s.end - begin});
    }
    auto piece_ids = tok.EncodeWithMarkup(std::string_view(text).substr(begin, end - begin), spans,
                                          /*add_special=*/false);
    ids.insert(ids.end(), piece_ids.begin(), piece_ids.end());
  };
  // Rows are n_embd floats each: text is counted in tokens before it becomes
  // rows, so a long text costs its token ids, never a context's worth of
  // rows many times over (each token of the text became n_embd floats).
  auto too_long = [&](size_t more_rows) -> std::optional<ApiError> {
    const size_t rows = out->size() / static_cast<size_t>(n_embd) + more_rows;
    if (rows < static_cast<size_t>(context)) return std::nullopt;
    return TooLong("the chat prompt is at least " + std::to_string(rows) + " rows; the context holds " +
                       std::to_string(context) + " (and one generated token)",
                   "messages");
  };
  for (size_t k = 0; k < parts.size(); ++k) {
    piece(cuts[k]);
    if (auto e = too_long(ids.size())) return *e;
    CLLM_RETURN_IF_ERROR(AppendTokenRows(model, ids, out.get()));
    ids.clear();
    // At most the rows the context has left: K parts never decode to more.
    const int left = context - static_cast<int>(out->size() / static_cast<size_t>(n_embd));
    CLLM_RETURN_IF_ERROR(DecodePromptEmbeds(parts[k], n_embd, left, "messages", out.get()));
    begin = cuts[k] + placeholders[k].size();
    if (auto e = too_long(0)) return *e;
  }
  piece(text.size());
  if (add_eos) ids.push_back(tok.eos());
  if (auto e = too_long(ids.size())) return *e;
  CLLM_RETURN_IF_ERROR(AppendTokenRows(model, ids, out.get()));
  return std::shared_ptr<const std::vector<float>>(std::move(out));
}

}  // namespace cllm::server
