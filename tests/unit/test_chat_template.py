"""Chat templates from model files run in Jinja's sandbox; failures blame the messages."""

import pytest

from server.core.chat_template import CHATML_TEMPLATE, ChatTemplate
from server.core.types import ChatMessage
from server.errors import InvalidArgument

HELLO = (ChatMessage("user", "hello"),)


def test_renders_messages_and_opens_the_assistant_turn():
    t = ChatTemplate(CHATML_TEMPLATE, bos_token="", eos_token="")
    assert t.render(HELLO) == "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n"


def test_template_cannot_reach_python_internals():
    evil = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
    with pytest.raises(InvalidArgument) as caught:
        ChatTemplate(evil, bos_token="", eos_token="").render(HELLO)
    assert caught.value.violations[0].field == "chat.messages"


def test_raise_exception_in_template_is_invalid_argument():
    t = ChatTemplate("{{ raise_exception('roles must alternate') }}", bos_token="", eos_token="")
    with pytest.raises(InvalidArgument, match="roles must alternate"):
        t.render(HELLO)


def test_missing_or_broken_template_falls_back_to_chatml():
    assert ChatTemplate(None, bos_token="", eos_token="").fallback_reason
    broken = ChatTemplate("{% for %}", bos_token="", eos_token="")
    assert "does not compile" in broken.fallback_reason
    assert broken.render(HELLO).endswith("<|im_start|>assistant\n")
