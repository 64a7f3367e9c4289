#!/usr/bin/python3
"""Render a chat template with Python's jinja2, as Hugging Face transformers does.

The oracle of src/jinja's chat-template tests (chat_template_oracle_test.cc).
Reads one JSON job on stdin:

  {"template": "...", "bos_token": "<s>", "eos_token": "</s>",
   "now": 1767225600,                       # unix seconds for strftime_now (UTC)
   "cases": [{"messages": [...], "tools": [...] | absent,
              "add_generation_prompt": true, "kwargs": {...}}, ...]}

and writes {"results": [{"ok": true, "text": "..."} |
                        {"ok": false, "raised": bool, "error": "..."}]} on stdout:
one result per case, in order. `raised` is true when the template itself
called raise_exception (the error is then its message).

The environment is transformers' (utils/chat_template_utils.py): an
ImmutableSandboxedEnvironment with trim_blocks, lstrip_blocks and the
loopcontrols extension; raise_exception and strftime_now globals; a tojson
filter that is json.dumps with ensure_ascii=False by default.
"""
import datetime
import json
import sys

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


class Raised(Exception):
    pass


def main():
    job = json.load(sys.stdin)
    now = datetime.datetime.fromtimestamp(job.get("now", 0), datetime.timezone.utc)

    def raise_exception(message):
        raise Raised(message)

    def strftime_now(fmt):
        return now.strftime(fmt)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    results = []
    try:
        template = env.from_string(job["template"])
    except jinja2.TemplateError as e:
        results = [{"ok": False, "raised": False, "error": "syntax: " + str(e)} for _ in job["cases"]]
        json.dump({"results": results}, sys.stdout, ensure_ascii=False)
        return
    for case in job["cases"]:
        variables = dict(case.get("kwargs", {}))
        variables["messages"] = case["messages"]
        if case.get("tools") is not None:
            variables["tools"] = case["tools"]
        variables["add_generation_prompt"] = case.get("add_generation_prompt", True)
        variables["bos_token"] = job.get("bos_token", "")
        variables["eos_token"] = job.get("eos_token", "")
        try:
            results.append({"ok": True, "text": template.render(**variables)})
        except Raised as e:
            results.append({"ok": False, "raised": True, "error": str(e)})
        except Exception as e:  # a type error, an undefined value used: the template fails
            results.append({"ok": False, "raised": False, "error": type(e).__name__ + ": " + str(e)})
    json.dump({"results": results}, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
