#include "client/split/split_request.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "base/encoding.h"
#include "base/file.h"
#include "crypto/digest.h"

namespace cllm::split {

using nlohmann::json;

namespace {

// ToIds converts the tokenizer's ids (int32, in range by construction).
std::vector<uint32_t> ToIds(const std::vector<engine::TokenId>& ids) {
  std::vector<uint32_t> out;
  out.reserve(ids.size());
  for (engine::TokenId id : ids) out.push_back(static_cast<uint32_t>(id));
  return out;
}

}  // namespace

std::vector<std::string> ParseWordList(std::string_view text) {
  std::vector<std::string> words;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty() && line.front() != '#') words.emplace_back(line);
    pos = end + 1;
  }
  return words;
}

SplitResult<MaskPolicy> MaskPolicyFromSpec(std::string_view spec) {
  MaskPolicy policy;
  if (spec == "all") return policy;
  if (spec == "digits") {
    policy.kind = MaskKind::kDigits;
    return policy;
  }
  constexpr std::string_view kWordsPrefix = "words:";
  if (spec.substr(0, kWordsPrefix.size()) != kWordsPrefix || spec.size() == kWordsPrefix.size()) {
    return MakeError(
        SplitErrc::kInvalidArgument,
        "mask policy must be all, digits or words:FILE (got '" + std::string(spec) + "')");
  }
  const std::string path(spec.substr(kWordsPrefix.size()));
  auto text = ReadTextFile(path, uint64_t{16} << 20);
  if (!text.ok())
    return MakeError(SplitErrc::kInvalidArgument, "sensitive words file: " + text.detail());
  policy.kind = MaskKind::kWords;
  policy.words = ParseWordList(*text);
  if (policy.words.empty())
    return MakeError(SplitErrc::kInvalidArgument, "sensitive words file " + path + " has no word");
  return policy;
}

std::vector<uint8_t> BuildMask(const MaskPolicy& policy, std::string_view text,
                               std::span<const uint32_t> ids, const engine::Tokenizer& tokenizer) {
  std::vector<uint8_t> mask;
  std::vector<std::string> pieces;
  if (policy.kind != MaskKind::kAll) {
    pieces.reserve(ids.size());
    for (uint32_t id : ids)
      pieces.push_back(tokenizer.TokenToPiece(static_cast<engine::TokenId>(id)));
  }
  switch (policy.kind) {
    case MaskKind::kAll:
      mask.assign(ids.size(), 1);
      break;
    case MaskKind::kDigits:
      mask = MaskDigits(pieces);
      break;
    case MaskKind::kWords:
      mask = MaskWords(text, pieces, policy.words);
      break;
  }
  // BOS and other control tokens are public (every prompt has them).
  for (size_t i = 0; i < ids.size(); ++i) {
    if (tokenizer.GetTokenType(static_cast<engine::TokenId>(ids[i])) == engine::TokenType::kControl)
      mask[i] = 0;
  }
  return mask;
}

SplitResult<SplitEmbeds> EmbedText(const SplitModel& model, std::string_view text, bool add_bos,
                                   const RnmOptions& options, const MaskPolicy& policy,
                                   RandomSource& random) {
  // parse_special off: a user who types "<|im_end|>" sends those characters.
  const std::vector<uint32_t> ids =
      ToIds(model.tokenizer->Encode(text, add_bos, /*parse_special=*/false));
  if (ids.empty()) return MakeError(SplitErrc::kInvalidArgument, "the text has no tokens to embed");
  const std::vector<uint8_t> mask = BuildMask(policy, text, ids, *model.tokenizer);
  CLLM_ASSIGN_OR_RETURN(RnmResult rnm, ApplyRnm(model.table, ids, mask, options, random));
  SplitEmbeds out;
  CLLM_ASSIGN_OR_RETURN(out.rows, model.table.Gather(rnm.ids));
  out.n_rows = static_cast<uint32_t>(ids.size());
  out.dim = model.table.dim();
  out.num_perturbed = rnm.num_perturbed;
  out.epsilon_total = rnm.epsilon_total;
  out.num_replaced = rnm.num_replaced;
  return out;
}

std::string EncodeRowsBase64(std::span<const float> rows) {
  Bytes raw(rows.size() * 4);
  for (size_t i = 0; i < rows.size(); ++i) {
    const uint32_t bits = std::bit_cast<uint32_t>(rows[i]);
    for (int b = 0; b < 4; ++b) raw[i * 4 + b] = static_cast<uint8_t>(bits >> (8 * b));
  }
  return Base64Encode(raw);
}

json PromptEmbedsPart(const SplitEmbeds& embeds) {
  return {{"type", "prompt_embeds"},
          {"prompt_embeds", EncodeRowsBase64(embeds.rows)},
          {"prompt_embeds_dtype", "float32"}};
}

// ---------------------------------------------------------------------------
// SplitRewriter
// ---------------------------------------------------------------------------

SplitRewriter::SplitRewriter(const SplitModel& model, RnmOptions options, MaskPolicy policy,
                             RandomSource& random, size_t cache_entries)
    : model_(model),
      options_(options),
      policy_(std::move(policy)),
      random_(random),
      cache_entries_(cache_entries) {}

SplitResult<SplitRewriter::Cached> SplitRewriter::Embed(std::string_view text, bool add_bos,
                                                        Outcome& out) {
  const auto digest = crypto::Sha256(AsBytes(text));
  std::string key(1, add_bos ? '\1' : '\0');
  key.append(reinterpret_cast<const char*>(digest.data()), digest.size());
  if (auto it = cache_.find(key); it != cache_.end()) {
    ++out.reused;
    out.n_rows += it->second.n_rows;
    return it->second;
  }
  CLLM_ASSIGN_OR_RETURN(SplitEmbeds e,
                        EmbedText(model_, text, add_bos, options_, policy_, random_));
  Cached c{EncodeRowsBase64(e.rows), e.n_rows};
  out.n_rows += e.n_rows;
  out.num_perturbed += e.num_perturbed;
  out.epsilon_spent += e.epsilon_total;
  if (cache_entries_ > 0) {
    if (cache_.size() >= cache_entries_) {
      cache_.erase(order_.front());
      order_.pop_front();
    }
    cache_.emplace(key, c);
    order_.push_back(std::move(key));
  }
  return c;
}

SplitRewriter::Outcome SplitRewriter::Rewrite(std::string_view method, std::string_view target,
                                              std::string_view body) {
  Outcome out;
  auto refuse = [&out](int status, const char* code, std::string message) {
    out = Outcome{};
    out.ok = false;
    out.status = status;
    out.error_code = code;
    out.message = std::move(message);
    return out;
  };
  // Only what carries no text of the user's passes unchanged: a query string
  // or a body the rewriter does not read could hold the very text it hides.
  if (target.find('?') != std::string_view::npos) {
    return refuse(400, "split_query_refused",
                  "split mode forwards no query string (it could carry text to the server)");
  }
  const std::string_view path = target;
  if (method != "POST") {
    if ((method != "GET" && method != "HEAD") || !body.empty()) {
      return refuse(400, "split_unsupported_method",
                    "split mode forwards GET and HEAD without a body, and the POSTs it rewrites");
    }
    return out;
  }
  const bool chat = path == "/v1/chat/completions";
  if (!chat && path != "/v1/completions") {
    return refuse(400, "split_unsupported_endpoint",
                  "split mode forwards only /v1/chat/completions and /v1/completions (any other "
                  "POST could carry "
                  "text to the server)");
  }
  json req = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (req.is_discarded() || !req.is_object())
    return refuse(400, "invalid_json", "the request is not a JSON object");

  std::lock_guard<std::mutex> lock(mu_);
  auto embed = [&](std::string_view text, bool add_bos) -> SplitResult<Cached> {
    return Embed(text, add_bos, out);
  };
  if (!chat) {
    if (req.contains("prompt_embeds")) {
      if (req.contains("prompt"))
        return refuse(400, "prompt_embeds_invalid", "prompt and prompt_embeds together");
    } else {
      if (!req.contains("prompt") || !req["prompt"].is_string()) {
        return refuse(400, "split_unsupported_prompt",
                      "split mode embeds a string prompt only (arrays and token ids are not sent)");
      }
      auto e = embed(req["prompt"].get_ref<const std::string&>(), /*add_bos=*/true);
      if (!e.ok()) return refuse(400, "split_embed_failed", e.detail());
      req.erase("prompt");
      req["prompt_embeds"] = e->embeds;
      req["prompt_embeds_dtype"] = "float32";
    }
  } else {
    if (!req.contains("messages") || !req["messages"].is_array()) {
      return refuse(400, "invalid_request", "messages must be an array");
    }
    for (json& m : req["messages"]) {
      if (!m.is_object() || !m.contains("role") || m["role"] != "user" || !m.contains("content"))
        continue;
      json& content = m["content"];
      json parts = json::array();
      if (content.is_string()) {
        parts.push_back({{"type", "text"}, {"text", content}});
      } else if (content.is_array()) {
        parts = content;
      } else {
        return refuse(400, "invalid_request",
                      "a user message's content must be a string or an array of parts");
      }
      json rewritten = json::array();
      for (const json& p : parts) {
        // value() would throw on a non-string "type": read it only when it is one.
        const std::string type = p.is_object() && p.contains("type") && p["type"].is_string()
                                     ? p["type"].get<std::string>()
                                     : "";
        if (type == "prompt_embeds") {
          rewritten.push_back(p);
        } else if (type == "text" && p.contains("text") && p["text"].is_string()) {
          const std::string& text = p["text"].get_ref<const std::string&>();
          if (text.empty()) continue;
          auto e = embed(text, /*add_bos=*/false);
          if (!e.ok()) return refuse(400, "split_embed_failed", e.detail());
          rewritten.push_back({{"type", "prompt_embeds"},
                               {"prompt_embeds", e->embeds},
                               {"prompt_embeds_dtype", "float32"}});
        } else {
          return refuse(400, "split_unsupported_part",
                        "split mode sends user content as text parts turned into prompt_embeds "
                        "only (part type '" +
                            type + "' is not supported)");
        }
      }
      content = std::move(rewritten);
    }
  }
  out.body = req.dump();
  out.rewritten = true;
  return out;
}

}  // namespace cllm::split
