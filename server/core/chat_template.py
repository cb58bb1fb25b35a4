"""Renders chat messages with a model's own Jinja chat template, inside Jinja's sandbox.

A chat template comes from the model file, so it is untrusted code: it runs in an immutable
sandbox (no attribute access to internals, no mutation of passed objects) and any failure is
reported as a problem with the request's messages, never as a server crash.
"""

from __future__ import annotations

import datetime
import json
import re
from functools import lru_cache

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from server.core.types import ChatMessage, Tool
from server.errors import InvalidArgument, TokenwireError

# Used when a model file carries no template: ChatML, which llama.cpp also falls back to.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


# A conversation every template should accept, rendered once when a model loads to catch a
# template that reaches for what the sandbox forbids before any request does.
PROBE = (ChatMessage("system", "You are helpful."), ChatMessage("user", "Hello"),
         ChatMessage("assistant", "Hi!"), ChatMessage("user", "Bye"))


class UnsafeChatTemplate(TokenwireError):
    """A model file's chat template tried something the sandbox forbids: the model is refused."""

    reason = "UNSAFE_CHAT_TEMPLATE"


class TemplateError(Exception):
    """Raised by a template through its `raise_exception(...)` helper."""


def _raise_exception(message: str) -> None:
    raise TemplateError(message)


def _strftime_now(fmt: str) -> str:
    return datetime.datetime.now().strftime(fmt)


def _message(m: ChatMessage) -> dict:
    """A message as templates read it (the shape of OpenAI's, which Hugging Face templates use):
    the tool fields only where they are set, as templates test `is defined`."""
    out: dict = {"role": m.role, "content": m.content}
    if m.tool_calls:
        out["tool_calls"] = [{"id": c.id, "type": "function",
                              "function": {"name": c.name, "arguments": json.loads(c.arguments)}}
                             for c in m.tool_calls]
    if m.tool_call_id:
        out["tool_call_id"] = m.tool_call_id
    if m.name:
        out["name"] = m.name
    return out


def _tool(t: Tool) -> dict:
    return {"type": "function", "function": {
        "name": t.name, "description": t.description,
        "parameters": t.parameters or {"type": "object", "properties": {}}}}


@lru_cache(maxsize=16)
def _compile(source: str) -> jinja2.Template:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals.update(raise_exception=_raise_exception, strftime_now=_strftime_now)
    return env.from_string(source)


class ChatTemplate:
    def __init__(self, source: str | None, *, bos_token: str, eos_token: str):
        self.source = source or CHATML_TEMPLATE
        self.bos_token = bos_token
        self.eos_token = eos_token
        try:
            self._template = _compile(self.source)
        except jinja2.TemplateError as exc:
            # A broken template in a model file is the model's fault; fall back rather than refuse
            # every chat request. The caller logs which template is in use.
            self.source = CHATML_TEMPLATE
            self._template = _compile(CHATML_TEMPLATE)
            self.fallback_reason = f"model chat template does not compile: {exc}"
        else:
            self.fallback_reason = None if source else "model file has no chat template"

    @property
    def tool_format(self) -> str:
        """How this model calls tools: "hermes" when its template renders `tools` itself and
        writes calls as `<tool_call>{"name", "arguments"}</tool_call>` (Hermes 2 Pro, Qwen 2.5
        and later, and the many templates that copied them); "generic" otherwise, where the
        server describes the tools in the system message (server/core/tool_calls.py)."""
        if "<tool_call>" in self.source and re.search(r"\btools\b", self.source):
            return "hermes"
        return "generic"

    def verify(self, origin: str) -> None:
        """Renders a sample conversation in the sandbox; raises UnsafeChatTemplate when the
        template tries an operation the sandbox blocks (the operation does not happen). Other
        failures are left to requests: a template may refuse some conversations on purpose."""
        try:
            self.render(PROBE)
        except InvalidArgument as exc:
            if isinstance(exc.__cause__, SecurityError) or isinstance(exc.__context__, SecurityError):
                raise UnsafeChatTemplate(
                    f"the chat template in {origin} was refused: it tried an operation the "
                    f"template sandbox forbids ({exc.__context__})") from None

    def render(self, messages: tuple[ChatMessage, ...], tools: tuple[Tool, ...] = ()) -> str:
        """The prompt for `messages`; `tools` are passed to the template (for a template whose
        tool_format is not "generic")."""
        extra = {"tools": [_tool(t) for t in tools]} if tools else {}
        try:
            return self._template.render(
                messages=[_message(m) for m in messages], **extra,
                add_generation_prompt=True,
                bos_token=self.bos_token,
                eos_token=self.eos_token,
            )
        except TemplateError as exc:
            raise InvalidArgument.single("chat.messages", f"rejected by the model's chat template: {exc}")
        except (jinja2.TemplateError, TypeError, ValueError) as exc:
            raise InvalidArgument.single("chat.messages", f"the model's chat template failed: {exc}")
