"""The built-in chat page (reference document 003's Web UI) as a person meets it: served at `/`
from local files under a strict Content-Security-Policy, and, in a real headless Chromium,
streaming an answer from the model through the session API."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from tests.e2e.browser import Browser


def test_the_page_and_its_assets_come_from_this_origin_only(http):
    page = http.get("/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp
    html = page.get_data(as_text=True)
    assert '<script src="/ui/chat.js">' in html and "://" not in html
    script = http.get("/ui/chat.js")
    assert script.status_code == 200 and script.mimetype in ("text/javascript",
                                                             "application/javascript")
    assert "innerHTML" not in script.get_data(as_text=True)  # server text only via textContent
    assert http.get("/ui/chat.css").mimetype == "text/css"
    assert http.get("/ui/index.html").status_code == 404  # only the listed assets
    assert http.get("/ui/..%2fchat.js").status_code == 404


def test_a_deep_link_streams_the_answer_into_a_new_session(bridge, http):
    before = set(http.get("/sessions").get_json())
    query = urlencode({"q": "What is the capital of France?", "system": "Answer in one word.",
                       "temperature": "0"})
    with Browser() as browser:
        page = browser.open(f"{bridge.base_url}/?{query}")
        page.wait_for("document.body.dataset.state === 'idle'", timeout=120)
        shown = page.evaluate("""Array.from(document.querySelectorAll('#messages .message'))
            .map(m => [m.className, m.querySelector('.content').textContent])""")
        assert shown[0] == ["message system", "Answer in one word."]
        assert shown[1] == ["message user", "What is the capital of France?"]
        assert shown[2][0] == "message assistant" and "Paris" in shown[2][1]
        assert page.evaluate("document.getElementById('error').hidden") is True
        assert re.match(r"\d+ tokens · ", page.evaluate("document.getElementById('counter').textContent"))
        page.wait_for("document.getElementById('status').className === 'status ready'")
        listed = page.evaluate("Array.from(document.querySelectorAll('#sessions li.current'))"
                               ".map(li => li.textContent)")
    new = set(http.get("/sessions").get_json()) - before
    assert len(new) == 1  # the page's chat is a real session, the current one in the sidebar
    assert listed == [next(iter(new)) + "×"]


def test_regenerate_and_edit_as_a_branch_keep_the_server_history_in_step(bridge, http):
    query = urlencode({"q": "Name a colour.", "temperature": "0"})
    with Browser() as browser:
        page = browser.open(f"{bridge.base_url}/?{query}")
        page.wait_for("document.body.dataset.state === 'idle'", timeout=120)
        first = page.evaluate("document.querySelector('li.current .open').textContent")

        # Regenerate: the last exchange is rolled back on the server and asked again.
        page.evaluate("document.querySelector('.message.assistant .actions button').click()")
        page.wait_for("document.body.dataset.state === 'streaming'")
        page.wait_for("document.body.dataset.state === 'idle'", timeout=120)
        history = http.get(f"/chat/history/{first}").get_json()
        assert [m["role"] for m in history] == ["user", "assistant"]

        # Edit the question: a new session branches off before it; the original is untouched.
        page.evaluate("document.querySelector('.message.user .actions button').click()")
        assert page.evaluate("document.getElementById('input').value") == "Name a colour."
        page.evaluate("""(() => { document.getElementById('input').value = 'Name a fruit.';
                                  document.getElementById('composer').requestSubmit(); })()""")
        page.wait_for("document.body.dataset.state === 'streaming'")
        page.wait_for("document.body.dataset.state === 'idle'", timeout=120)
        branch = page.evaluate("document.querySelector('li.current .open').textContent")
    assert branch != first
    assert http.get(f"/chat/history/{first}").get_json() == history
    assert [m["content"] for m in http.get(f"/chat/history/{branch}").get_json()
            if m["role"] == "user"] == ["Name a fruit."]
