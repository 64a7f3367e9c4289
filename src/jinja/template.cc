#include "jinja/template.h"

#include <new>
#include <stdexcept>

#include "jinja/interp.h"
#include "jinja/lexer.h"
#include "jinja/parser.h"

namespace cllm::jinja {

const char* JinjaErrcName(JinjaErrc code) {
  switch (code) {
    case JinjaErrc::kSyntax: return "syntax";
    case JinjaErrc::kRender: return "render";
    case JinjaErrc::kRaised: return "raised";
    case JinjaErrc::kLimit: return "limit";
  }
  return "unknown";
}

struct Template::Impl {
  Limits limits;
  Body body;
};

Template::Template() : impl_(std::make_unique<Impl>()) {}
Template::~Template() = default;

Value JsonDict(std::shared_ptr<Dict> d, int64_t depth) {
  Value v = Value::MakeDict(std::move(d));
  v.i = depth;
  return v;
}

Value JsonList(std::vector<Value> items, int64_t depth) {
  Value v = Value::List(std::move(items));
  v.i = depth;
  return v;
}

namespace {

Error<JinjaErrc> ToError(const Failure& f) {
  std::string where = f.has_pos ? std::to_string(f.pos.line) + ":" + std::to_string(f.pos.col) + ": " : "";
  return MakeError(f.code, where + f.message);
}

}  // namespace

JinjaResult<std::shared_ptr<const Template>> Template::Parse(std::string_view source) { return Parse(source, Limits{}); }

JinjaResult<std::shared_ptr<const Template>> Template::Parse(std::string_view source, const Limits& limits) {
  std::shared_ptr<Template> t(new Template());
  t->impl_->limits = limits;
  try {
    std::vector<Token> tokens = Lex(source, limits.max_tokens);
    t->impl_->body = jinja::Parse(tokens, limits.max_nesting);
  } catch (const Failure& f) {
    return ToError(f);
  } catch (const std::bad_alloc&) {
    return MakeError(JinjaErrc::kLimit, "out of memory parsing the template");
  } catch (const std::exception& e) {
    return MakeError(JinjaErrc::kSyntax, std::string("template: ") + e.what());
  }
  return std::shared_ptr<const Template>(std::move(t));
}

JinjaResult<Rendered> Template::Render(const Variables& vars, const RenderOptions& options) const {
  try {
    Interp interp(impl_->limits, options.strftime_now);
    Scope root;
    AddGlobals(&root);
    for (const auto& [name, v] : vars.all()) {
      if (v.is_undefined() && v.hint == "'input nests too deeply'") Fail(JinjaErrc::kLimit, "variable '" + name + "' nests too deeply");
      root.vars[name] = v;
    }
    Str out = interp.Render(impl_->body, &root);
    Rendered r;
    r.text = std::move(out.s);
    r.template_spans = std::move(out.tmpl);
    return r;
  } catch (const Failure& f) {
    return ToError(f);
  } catch (const std::bad_alloc&) {
    return MakeError(JinjaErrc::kLimit, "out of memory rendering the template");
  } catch (const std::exception& e) {
    return MakeError(JinjaErrc::kRender, std::string("template: ") + e.what());
  }
}

std::function<std::string(const std::string&)> StrftimeAt(std::time_t t) {
  return [t](const std::string& fmt) {
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[256];
    if (fmt.size() > 64) return std::string();
    size_t n = std::strftime(buf, sizeof(buf), fmt.c_str(), &tm);
    return std::string(buf, n);
  };
}

}  // namespace cllm::jinja
