// extra_routes.cc — the service's routes beside completions:
//   POST /tokenize   {"content", "add_special"=false, "parse_special"=true, "with_pieces"=false}
//                    → {"tokens": [id…]} or {"tokens": [{"id", "piece"}…]}   (llama-server's shapes)
//   POST /detokenize {"tokens": [id…]} → {"content": text}
//   POST /v1/embeddings (OpenAI) {"input": string | [string] | [id] | [[id]], "model",
//                    "encoding_format": "float" | "base64", "user"}
//                    → {"object": "list", "data": [{"object": "embedding", "index", "embedding"}],
//                       "model", "usage": {"prompt_tokens", "total_tokens"}}
// All authenticated like completions and charged to the user's token
// budget (the tokens they produce or read). Embeddings run on the
// scheduler's worker like any sequence (the model's forward pass is the
// worker's alone): one embedding sequence per input, pooled over the final
// hidden states after the output norm — the GGUF's `<arch>.pooling_type`
// when it names mean (1), cls (2) or last (3), else mean — and L2-normalised,
// as llama-server's /v1/embeddings does with --pooling mean. Text is never
// logged.
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>

#include "base/encoding.h"
#include "base/json_guard.h"
#include "base/utf8.h"
#include "server/service.h"

namespace cllm::server {
namespace {

using nlohmann::json;

// Body parses a request body as a JSON object whose fields are all in `allowed`.
ApiResult<json> Body(std::string_view body, const ApiLimits& limits, std::initializer_list<const char*> allowed) {
  if (body.size() > limits.max_body_bytes) {
    return MakeError(ApiErrc::kTooLarge, "request body over " + std::to_string(limits.max_body_bytes) + " bytes");
  }
  if (!JsonDepthWithin(body)) return BadField("request body nests deeper than " + std::to_string(kMaxJsonDepth));
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return BadField("request body must be a JSON object");
  for (const auto& [key, v] : j.items()) {
    bool known = false;
    for (const char* a : allowed) known = known || key == a;
    if (!known) return BadField("unknown or unsupported field '" + key + "'", key);
  }
  return j;
}

ApiResult<bool> Flag(const json& j, const char* key, bool fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) return BadField(std::string("'") + key + "' must be a boolean", key);
  return it->get<bool>();
}

// TokenList reads an array of token ids, each in the vocabulary.
ApiResult<std::vector<engine::TokenId>> TokenList(const json& v, const char* field, int n_vocab,
                                                  const ApiLimits& limits) {
  if (!v.is_array()) return BadField(std::string("'") + field + "' must be an array of token ids", field);
  if (v.size() > limits.max_token_list) {
    return BadField(std::string("'") + field + "' has more than " + std::to_string(limits.max_token_list) + " tokens",
                    field);
  }
  std::vector<engine::TokenId> out;
  for (const auto& t : v) {
    if (!t.is_number_integer() || (t.is_number_unsigned() && t.get<uint64_t>() >= static_cast<uint64_t>(n_vocab)) ||
        t.get<int64_t>() < 0 || t.get<int64_t>() >= n_vocab) {
      return BadField(std::string("'") + field + "' holds a token id outside the vocabulary of " +
                          std::to_string(n_vocab) + " tokens",
                      field);
    }
    out.push_back(static_cast<engine::TokenId>(t.get<int64_t>()));
  }
  return out;
}

// Piece renders a token's bytes as llama-server does: a string when they
// are valid UTF-8, else the list of byte values.
json Piece(const std::string& bytes) {
  if (IsValidUtf8(bytes)) return bytes;
  json a = json::array();
  for (unsigned char b : bytes) a.push_back(static_cast<int>(b));
  return a;
}

engine::EmbeddingPooling PoolingOf(const engine::Model& model) {
  auto v = model.file().GetUint(model.config().arch + ".pooling_type");
  if (v.ok() && *v == 2) return engine::EmbeddingPooling::kCls;
  if (v.ok() && *v == 3) return engine::EmbeddingPooling::kLast;
  return engine::EmbeddingPooling::kMean;
}

// EmbeddingJob gathers the vectors of one request's inputs (on the worker)
// and answers once the last is done.
struct EmbeddingJob {
  std::mutex mu;
  std::shared_ptr<net::ResponseWriter> writer;
  std::string model;
  bool base64 = false;
  int prompt_tokens = 0;
  std::vector<std::vector<float>> vectors;
  size_t remaining = 0;
  bool failed = false, cancelled = false;

  void Done(size_t index, engine::FinishKind finish, std::vector<float>* v) {
    std::lock_guard<std::mutex> lock(mu);
    const bool ok = finish == engine::FinishKind::kEndOfGeneration;
    if (ok && v != nullptr) vectors[index] = std::move(*v);
    failed = failed || !ok;
    cancelled = cancelled || finish == engine::FinishKind::kCancelled;
    if (--remaining > 0) return;
    if (writer->client_gone()) return;
    if (failed) {
      // Cancelled with the client still there: the server is shutting down.
      ApiError e = cancelled ? MakeError(ApiErrc::kNotReady, "the server is shutting down")
                             : MakeError(ApiErrc::kInternal, "embedding failed");
      writer->Send(HttpStatus(e.code), "application/json", ErrorBody(e));
      return;
    }
    json data = json::array();
    for (size_t i = 0; i < vectors.size(); ++i) {
      std::vector<float>& e = vectors[i];
      double norm = 0;
      for (float x : e) norm += static_cast<double>(x) * x;
      norm = std::sqrt(norm);
      if (norm > 0) {
        for (float& x : e) x = static_cast<float>(x / norm);
      }
      json item = {{"object", "embedding"}, {"index", i}};
      if (base64) {
        // OpenAI's base64: the float32 values, little-endian, concatenated.
        Bytes raw(e.size() * sizeof(float));
        std::memcpy(raw.data(), e.data(), raw.size());
        item["embedding"] = Base64Encode(raw);
      } else {
        item["embedding"] = e;
      }
      data.push_back(std::move(item));
    }
    json body = {{"object", "list"},
                 {"data", std::move(data)},
                 {"model", model},
                 {"usage", {{"prompt_tokens", prompt_tokens}, {"total_tokens", prompt_tokens}}}};
    writer->Send(200, "application/json", body.dump());
  }
};

}  // namespace

bool Service::IsExtraRoute(const std::string& path) {
  return path == "/tokenize" || path == "/detokenize" || path == "/v1/embeddings";
}

ApiError Service::ContextExceeded(int context, int prompt, int completion, const char* param) {
  ApiError e = MakeError(ApiErrc::kContextLength,
                         "This model's maximum context length is " + std::to_string(context) +
                             " tokens. However, you requested " + std::to_string(prompt + completion) + " tokens (" +
                             std::to_string(prompt) + " in the " + param + ", " + std::to_string(completion) +
                             " in the completion).");
  e.param = param;
  return e;
}

void Service::ExtraRoute(const std::string& path, const net::Request& req,
                         const std::shared_ptr<net::ResponseWriter>& w, const ApiUser& user) {
  if (shutting_down_) return SendError(*w, MakeError(ApiErrc::kNotReady, "the server is shutting down"));
  // Parsing and tokenizing up to a megabyte runs on a shared handler thread
  // too: one large request per key at a time, as for completions.
  const auto preparing = preparing_.Enter(user.id, options_.api_keys ? req.body.size() : 0);
  if (!preparing) return RateLimited(*w, 1, "this key is already preparing a large request; retry after 1 s");
  if (path == "/v1/embeddings") return Embeddings(req, w, user);
  // Tokenizing costs CPU: the produced (or read) tokens count against the budget.
  const int64_t per_minute = user.limits.tokens_per_minute.value_or(options_.user_tokens_per_minute);
  auto budget = budget_.Admit(user.id, per_minute, 0);
  if (!budget.admitted) {
    return RateLimited(*w, budget.retry_after_s, "over this key's token budget; retry after " +
                                                     std::to_string(budget.retry_after_s) + " s");
  }
  const int64_t tokens = path == "/tokenize" ? Tokenize(req, *w) : Detokenize(req, *w);
  budget_.Charge(user.id, per_minute, tokens);
}

int64_t Service::Tokenize(const net::Request& req, net::ResponseWriter& w) {
  auto body = Body(req.body, options_.limits, {"content", "add_special", "parse_special", "with_pieces"});
  if (!body.ok()) return Fail(w, body.error());
  const json& j = *body;
  if (!j.contains("content") || !j["content"].is_string()) {
    return Fail(w, BadField("'content' must be a string", "content"));
  }
  auto add_special = Flag(j, "add_special", false);
  auto parse_special = Flag(j, "parse_special", true);
  auto with_pieces = Flag(j, "with_pieces", false);
  for (const auto* f : {&add_special, &parse_special, &with_pieces}) {
    if (!f->ok()) return Fail(w, f->error());
  }
  const engine::Tokenizer& tok = model_.tokenizer();
  const std::vector<engine::TokenId> ids = tok.Encode(j["content"].get<std::string>(), *add_special, *parse_special);
  json tokens = json::array();
  for (engine::TokenId id : ids) {
    if (*with_pieces) {
      tokens.push_back({{"id", id}, {"piece", Piece(tok.TokenToPiece(id, /*render_special=*/true))}});
    } else {
      tokens.push_back(id);
    }
  }
  w.Send(200, "application/json", json{{"tokens", tokens}}.dump());
  return static_cast<int64_t>(ids.size());
}

int64_t Service::Detokenize(const net::Request& req, net::ResponseWriter& w) {
  auto body = Body(req.body, options_.limits, {"tokens"});
  if (!body.ok()) return Fail(w, body.error());
  if (!body->contains("tokens")) return Fail(w, BadField("'tokens' is required", "tokens"));
  auto ids = TokenList((*body)["tokens"], "tokens", model_.config().n_vocab, options_.limits);
  if (!ids.ok()) return Fail(w, ids.error());
  // Special tokens render as their text, as llama-server's does; bytes that
  // are not UTF-8 (a cut character) become U+FFFD in the JSON.
  const std::string text = model_.tokenizer().Decode(*ids, /*render_special=*/true);
  w.Send(200, "application/json", json{{"content", text}}.dump(-1, ' ', false, json::error_handler_t::replace));
  return static_cast<int64_t>(ids->size());
}

void Service::Embeddings(const net::Request& req, const std::shared_ptr<net::ResponseWriter>& w,
                         const ApiUser& user) {
  auto body = Body(req.body, options_.limits, {"input", "model", "encoding_format", "user", "dimensions"});
  if (!body.ok()) return SendError(*w, body.error());
  const json& j = *body;
  if (j.contains("model") && !j["model"].is_null()) {
    if (!j["model"].is_string()) return SendError(*w, BadField("'model' must be a string", "model"));
    const std::string model = j["model"].get<std::string>();
    if (!model.empty() && model != options_.model_name) {
      ApiError e = MakeError(ApiErrc::kNotFound, "model \"" + model.substr(0, 64) + "\" is not served here");
      e.param = "model";
      return SendError(*w, e);
    }
  }
  if (j.contains("user") && !j["user"].is_string()) return SendError(*w, BadField("'user' must be a string", "user"));
  if (j.contains("dimensions") && !j["dimensions"].is_null()) {
    return SendError(*w, BadField("'dimensions' is not supported (the model's n_embd is returned)", "dimensions"));
  }
  bool base64 = false;
  if (j.contains("encoding_format") && !j["encoding_format"].is_null()) {
    const json& f = j["encoding_format"];
    if (!f.is_string() || (f != "float" && f != "base64")) {
      return SendError(*w, BadField("'encoding_format' must be \"float\" or \"base64\"", "encoding_format"));
    }
    base64 = f == "base64";
  }
  if (!j.contains("input")) return SendError(*w, BadField("'input' is required", "input"));

  // --- inputs: a string, strings, a token list or token lists ----------------
  const json& in = j["input"];
  const engine::Tokenizer& tok = model_.tokenizer();
  const int n_vocab = model_.config().n_vocab;
  std::vector<std::vector<engine::TokenId>> prompts;
  auto add_text = [&](const json& s) {
    if (s.get_ref<const std::string&>().empty()) return prompts.emplace_back(), void();  // refused below, as OpenAI does
    prompts.push_back(tok.Encode(s.get<std::string>(), /*add_special=*/true, /*parse_special=*/false));
  };
  if (in.is_string()) {
    add_text(in);
  } else if (in.is_array() && !in.empty() && in[0].is_number_integer()) {
    // One token list: held to max_token_list (TokenList), not to the count of inputs.
    auto ids = TokenList(in, "input", n_vocab, options_.limits);
    if (!ids.ok()) return SendError(*w, ids.error());
    prompts.push_back(std::move(ids).value());
  } else if (in.is_array() && !in.empty() && in.size() <= options_.limits.max_embedding_inputs) {
    for (const auto& item : in) {
      if (item.is_string()) {
        add_text(item);
      } else if (item.is_array()) {
        auto ids = TokenList(item, "input", n_vocab, options_.limits);
        if (!ids.ok()) return SendError(*w, ids.error());
        prompts.push_back(std::move(ids).value());
      } else {
        return SendError(*w, BadField("'input' items must be strings or arrays of token ids", "input"));
      }
    }
  } else {
    return SendError(*w, BadField("'input' must be a string, an array of 1 to " +
                                      std::to_string(options_.limits.max_embedding_inputs) +
                                      " strings, or token ids",
                                  "input"));
  }
  int total = 0;
  const int context = scheduler_->context_length();
  for (const auto& p : prompts) {
    if (p.empty()) return SendError(*w, BadField("'input' must not be empty", "input"));
    if (static_cast<int>(p.size()) > context) {
      return SendError(*w, ContextExceeded(context, static_cast<int>(p.size()), 0, "input"));
    }
    total += static_cast<int>(p.size());
  }

  // --- budget, then one embedding sequence per input ------------------------------
  const int64_t per_minute = user.limits.tokens_per_minute.value_or(options_.user_tokens_per_minute);
  auto budget = budget_.Admit(user.id, per_minute, total);
  if (!budget.admitted) {
    return RateLimited(*w, budget.retry_after_s, "over this key's budget of " + std::to_string(per_minute) +
                                                     " tokens per minute; retry after " +
                                                     std::to_string(budget.retry_after_s) + " s");
  }
  auto job = std::make_shared<EmbeddingJob>();
  job->writer = w;
  job->model = options_.model_name;
  job->base64 = base64;
  job->prompt_tokens = total;
  job->vectors.resize(prompts.size());
  job->remaining = prompts.size();
  auto cancel = std::make_shared<std::atomic<bool>>(false);
  w->OnClientGone([cancel] { cancel->store(true); });
  const engine::UserLimits& defaults = options_.scheduler.user_limits;
  const engine::EmbeddingPooling pooling = PoolingOf(model_);
  std::vector<engine::SequenceRequest> group;
  for (size_t i = 0; i < prompts.size(); ++i) {
    engine::SequenceRequest sr;
    sr.user = user.id;
    sr.limits = engine::UserLimits{user.limits.max_active.value_or(defaults.max_active),
                                   user.limits.max_queued.value_or(defaults.max_queued)};
    sr.prompt = std::move(prompts[i]);
    sr.max_tokens = 0;
    sr.pooling = pooling;
    sr.cancelled = cancel;
    auto vec = std::make_shared<std::vector<float>>();
    sr.on_embedding = [vec](std::vector<float> e) { *vec = std::move(e); };
    sr.on_done = [job, vec, i](const engine::SequenceOutcome& o) {
      job->Done(i, o.finish, vec.get());
    };
    group.push_back(std::move(sr));
  }
  auto submitted = scheduler_->SubmitGroup(std::move(group));
  if (!submitted.ok()) {
    budget_.Charge(user.id, per_minute, -total);
    switch (submitted.code()) {
      case engine::SubmitErrc::kQueueFull:
      case engine::SubmitErrc::kUserQueueFull:
      case engine::SubmitErrc::kUserActiveLimit:
        return RateLimited(*w, 1, submitted.detail());
      case engine::SubmitErrc::kStopped: return SendError(*w, MakeError(ApiErrc::kNotReady, submitted.detail()));
      default: return SendError(*w, BadField(submitted.detail(), "input"));
    }
  }
}

}  // namespace cllm::server
