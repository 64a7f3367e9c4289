#include "engine/tokenizer/chat_template.h"

#include "jinja/template.h"

namespace cllm::engine {
namespace {

// The conversation every template is tried on at load: one user message is
// what any chat template must render.
ChatTemplateInput ProbeInput() {
  ChatTemplateInput in;
  in.messages = nlohmann::json::array({{{"role", "user"}, {"content", "Hello"}}});
  in.now = 0;
  return in;
}

// A tool-calling exchange whose assistant content is null, as OpenAI sends it.
ChatTemplateInput NullContentProbe() {
  ChatTemplateInput in = ProbeInput();
  nlohmann::json call = {{"id", "call00000"}, {"type", "function"},
                         {"function", {{"name", "probe"}, {"arguments", nlohmann::json::object()}}}};
  in.messages.push_back({{"role", "assistant"}, {"content", nullptr}, {"tool_calls", {call}}});
  in.messages.push_back({{"role", "tool"}, {"tool_call_id", "call00000"}, {"name", "probe"}, {"content", "ok"}});
  return in;
}

std::string ContentText(const nlohmann::json& content) {
  if (content.is_string()) return content.get<std::string>();
  std::string out;
  if (content.is_array()) {
    for (const auto& part : content) {
      if (part.is_object() && part.contains("text") && part["text"].is_string()) out += part["text"].get<std::string>();
    }
  }
  return out;
}

}  // namespace

ChatTemplate ChatTemplate::Plain() { return ChatTemplate(); }

TokenizerResult<ChatTemplate> ChatTemplate::FromSource(std::string source, std::string bos_token,
                                                       std::string eos_token, bool strip_bos) {
  auto parsed = jinja::Template::Parse(source);
  if (!parsed.ok()) return MakeError(TokenizerErrc::kUnsupportedModel, "chat template does not parse: " + parsed.detail());
  ChatTemplate t;
  t.source_ = std::move(source);
  t.tmpl_ = std::move(parsed).value();
  t.bos_token_ = std::move(bos_token);
  t.eos_token_ = std::move(eos_token);
  t.strip_bos_ = strip_bos;
  auto probe = t.Render(ProbeInput());
  if (!probe.ok()) {
    return MakeError(TokenizerErrc::kUnsupportedModel, "chat template fails on a one-message conversation: " + probe.detail());
  }
  if (!t.Render(NullContentProbe()).ok()) {
    t.null_content_as_empty_ = true;
    if (!t.Render(NullContentProbe()).ok()) t.null_content_as_empty_ = false;  // fails either way: not the null
  }
  return t;
}

TokenizerResult<ChatTemplate> ChatTemplate::ForModel(const GgufFile& file, const Tokenizer& tok,
                                                     std::optional<std::string> override_source) {
  std::string source;
  if (override_source) {
    source = std::move(*override_source);
  } else {
    auto s = file.GetString("tokenizer.chat_template");
    if (!s.ok()) return Plain();
    source = std::string(*s);
  }
  std::string bos = tok.bos() >= 0 ? tok.TokenText(tok.bos()) : "";
  std::string eos = tok.eos() >= 0 ? tok.TokenText(tok.eos()) : "";
  // The tokenizer adds BOS itself when its metadata says so: a template
  // that also writes bos_token would double it (llama.cpp drops it too).
  std::vector<TokenId> empty = tok.Encode("", /*add_special=*/true, /*parse_special=*/false);
  bool adds_bos = !empty.empty() && empty.front() == tok.bos() && tok.bos() >= 0;
  return FromSource(std::move(source), std::move(bos), std::move(eos), adds_bos);
}

TokenizerResult<ChatText> ChatTemplate::Render(const ChatTemplateInput& in) const {
  ChatText out;
  if (tmpl_ == nullptr) {
    // Plain: the contents joined by newlines, all of it data.
    bool first = true;
    for (const auto& m : in.messages) {
      if (!m.is_object() || !m.contains("content") || m["content"].is_null()) continue;
      if (!first) out.text += "\n";
      first = false;
      out.text += ContentText(m["content"]);
    }
    return out;
  }
  jinja::Variables vars;
  if (in.kwargs.is_object()) {
    for (const auto& [k, v] : in.kwargs.items()) vars.Set(k, jinja::FromJson(v));
  }
  if (null_content_as_empty_) {
    nlohmann::json messages = in.messages;
    for (auto& m : messages) {
      if (m.is_object() && m.contains("content") && m["content"].is_null()) m["content"] = "";
    }
    vars.Set("messages", jinja::FromJson(messages));
  } else {
    vars.Set("messages", jinja::FromJson(in.messages));
  }
  if (!in.tools.is_null()) vars.Set("tools", jinja::FromJson(in.tools));
  vars.Set("add_generation_prompt", jinja::Value::Bool(in.add_generation_prompt));
  // The special tokens are the model's own: they may become control tokens.
  vars.Set("bos_token", jinja::Value::String(jinja::Str::Template(bos_token_)));
  vars.Set("eos_token", jinja::Value::String(jinja::Str::Template(eos_token_)));
  jinja::RenderOptions opts;
  opts.strftime_now = jinja::StrftimeAt(in.now ? *in.now : std::time(nullptr));
  auto r = tmpl_->Render(vars, opts);
  if (!r.ok()) {
    const char* what = r.code() == jinja::JinjaErrc::kRaised ? "chat template raised: " : "chat template failed: ";
    return MakeError(TokenizerErrc::kUnsupportedModel, what + r.detail());
  }
  out.text = std::move(r->text);
  for (const auto& s : r->template_spans) out.markup.push_back({s.begin, s.end});
  if (strip_bos_ && !bos_token_.empty() && out.text.compare(0, bos_token_.size(), bos_token_) == 0 &&
      !out.markup.empty() && out.markup[0].begin == 0 && out.markup[0].end >= bos_token_.size()) {
    size_t n = bos_token_.size();
    out.text.erase(0, n);
    std::vector<TextSpan> shifted;
    for (const auto& s : out.markup) {
      size_t b = s.begin < n ? 0 : s.begin - n, e = s.end - n;
      if (e > b) shifted.push_back({b, e});
    }
    out.markup = std::move(shifted);
  }
  return out;
}

}  // namespace cllm::engine
