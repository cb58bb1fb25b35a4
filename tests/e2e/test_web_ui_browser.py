"""The built-in chat page (reference document 003's Web UI) as a person meets it: served at `/`
from local files under a strict Content-Security-Policy, and, in a real headless Chromium,
streaming an answer from the model through the session API."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from tests.e2e.browser import Browser


# Makes the page's turns fail as a dropped network would; `reconnect()` undoes it.
OFFLINE_FOR_TURNS = """(() => {
    const online = window.fetch;
    window.fetch = (url, options) => url === '/chat/completions'
        ? Promise.reject(new TypeError('Failed to fetch')) : online(url, options);
    window.reconnect = () => { window.fetch = online; };
})()"""


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


REGENERATE = ".message.assistant .actions button"
CURRENT = "document.querySelector('li.current .open').textContent"
SHOWN = """Array.from(document.querySelectorAll('#messages .message'))
    .map(m => [m.className, m.querySelector('.content').textContent])"""


def click_and_settle(page, selector: str) -> None:
    """Clicks a button that starts a turn and waits for the page to be idle after it. The page's
    states are recorded as they change: a failing turn can pass through 'streaming' faster than
    a poll would see it."""
    page.evaluate("""(() => {
        if (!window.pageStates) {
            new MutationObserver((records) => records.forEach((r) => pageStates.push(r.oldValue)))
                .observe(document.body, {attributeFilter: ['data-state'], attributeOldValue: true});
        }
        window.pageStates = [];
    })()""")
    page.evaluate(f"document.querySelector({selector!r}).click()")
    page.wait_for("pageStates.includes('streaming') && document.body.dataset.state === 'idle'",
                  timeout=120)


def test_regenerate_and_edit_as_a_branch_keep_the_server_history_in_step(bridge, http):
    query = urlencode({"q": "Name a colour.", "temperature": "0"})
    with Browser() as browser:
        page = browser.open(f"{bridge.base_url}/?{query}")
        page.wait_for("document.body.dataset.state === 'idle'", timeout=120)
        first = page.evaluate(CURRENT)

        # Regenerate: the question is asked again on a branch without the last exchange; once
        # the answer is stored, the branch replaces the session.
        click_and_settle(page, REGENERATE)
        regenerated = page.evaluate(CURRENT)
        assert regenerated != first and http.get(f"/chat/history/{first}").status_code == 404
        history = http.get(f"/chat/history/{regenerated}").get_json()
        assert [m["role"] for m in history] == ["user", "assistant"]
        assert history[0]["content"] == "Name a colour."

        # Edit the question: a new session branches off before it; the original is untouched.
        page.evaluate("document.querySelector('.message.user .actions button').click()")
        assert page.evaluate("document.getElementById('input').value") == "Name a colour."
        page.evaluate("""(() => { document.getElementById('input').value = 'Name a fruit.';
                                  document.getElementById('composer').requestSubmit(); })()""")
        page.wait_for("document.body.dataset.state === 'streaming'")
        page.wait_for("document.body.dataset.state === 'idle'", timeout=120)
        branch = page.evaluate(CURRENT)
    assert branch != regenerated
    assert http.get(f"/chat/history/{regenerated}").get_json() == history
    assert [m["content"] for m in http.get(f"/chat/history/{branch}").get_json()
            if m["role"] == "user"] == ["Name a fruit."]


def test_a_regenerate_that_fails_keeps_the_previous_exchange(bridge, http, server):
    query = urlencode({"q": "Name a colour.", "temperature": "0"})
    with Browser() as browser:
        page = browser.open(f"{bridge.base_url}/?{query}")
        page.wait_for("document.body.dataset.state === 'idle'", timeout=120)
        first, shown = page.evaluate(CURRENT), page.evaluate(SHOWN)
        history, sessions = http.get(f"/chat/history/{first}").get_json(), http.get("/sessions").get_json()

        def assert_kept(error: str) -> None:
            assert http.get(f"/chat/history/{first}").get_json() == history
            assert http.get("/sessions").get_json() == sessions  # the failed branch is gone
            assert page.evaluate(SHOWN) == shown and page.evaluate(CURRENT) == first
            assert page.evaluate("document.getElementById('error').hidden") is False
            assert error in page.evaluate("document.getElementById('error').textContent")

        # The network fails: the new turn never reaches the server.
        page.evaluate(OFFLINE_FOR_TURNS)
        click_and_settle(page, REGENERATE)
        assert_kept("Failed to fetch")
        page.evaluate("reconnect()")

        # The server refuses it: the engine is unloaded (and loaded again for the other tests).
        server.call(server.server.engines.unload("default"))
        try:
            click_and_settle(page, REGENERATE)
        finally:
            server.call(server.server.engines.load("default", raise_errors=True))
        assert_kept("unloaded")


ANSWER = "document.querySelector('.message.assistant:last-child .content')"
INPUT = "document.getElementById('input')"


def choose_settings(page, **fields: str) -> None:
    """Sets fields of the settings panel as a person does: the page saves a field on `change`."""
    for name, value in fields.items():
        page.evaluate(f"""(() => {{ const field = document.getElementById({name!r});
            field.value = {value!r}; field.dispatchEvent(new Event('change')); }})()""")


def type_message(page, text: str) -> None:
    page.evaluate(f"{INPUT}.value = {text!r}")


def test_a_streamed_answer_grows_without_rebuilding_what_it_shows(bridge, http):
    with Browser() as browser:
        page = browser.open(f"{bridge.base_url}/")
        page.wait_for("document.body.dataset.state === 'idle'", timeout=120)
        choose_settings(page, **{"set-temperature": "0", "set-max-tokens": "128"})
        # Every change inside the answer as it streams: a token that rebuilt the text shown so
        # far would remove its nodes (or rewrite one in place).
        page.evaluate("""(() => {
            window.answerChanges = {added: 0, removed: 0, rewritten: 0};
            new MutationObserver((records) => records.forEach((r) => {
                const at = r.target.nodeType === Node.TEXT_NODE ? r.target.parentElement : r.target;
                if (!at.closest('.message.assistant .content')) return;
                answerChanges.added += r.addedNodes.length;
                answerChanges.removed += r.removedNodes.length;
                if (r.type === 'characterData') answerChanges.rewritten += 1;
            })).observe(document.getElementById('messages'),
                        {childList: true, characterData: true, subtree: true});
        })()""")
        type_message(page, "Count from one to twenty.")
        click_and_settle(page, "#send")
        assert page.evaluate("document.getElementById('error').hidden") is True
        tokens = int(page.evaluate("document.getElementById('counter').textContent").split()[0])
        changes = page.evaluate("answerChanges")
        session = page.evaluate(CURRENT)
        shown = page.evaluate(f"{ANSWER}.textContent")
    assert "`" not in shown  # a plain answer: no fence to take back
    assert tokens > 10 and 1 < changes["added"] <= tokens  # one new text node a token at most
    assert changes["removed"] == 0 and changes["rewritten"] == 0
    assert http.get(f"/chat/history/{session}").get_json()[-1]["content"] == shown


def test_code_fences_and_markup_split_across_tokens_show_as_the_whole_text_would(bridge):
    # The page's stream is scripted here, to split a fence between tokens; what the page does with
    # each token is the real page's work.
    pieces = [
        ("Use ", "Use "),
        ("<img src=x onerror=alert(1)> ``", "Use &lt;img src=x onerror=alert(1)&gt; ``"),
        ("`py", "Use &lt;img src=x onerror=alert(1)&gt; "
                '<pre><code>py</code><button type="button">Copy</button></pre>'),
        ("\nprint('<b>')\n``", "Use &lt;img src=x onerror=alert(1)&gt; "
                               '<pre><code data-language="py">print(\'&lt;b&gt;\')\n``</code>'
                               '<button type="button">Copy</button></pre>'),
        ("`\nDone.", "Use &lt;img src=x onerror=alert(1)&gt; "
                     '<pre><code data-language="py">print(\'&lt;b&gt;\')\n</code>'
                     '<button type="button">Copy</button></pre>\nDone.'),
    ]
    with Browser() as browser:
        page = browser.open(f"{bridge.base_url}/")
        page.wait_for("document.body.dataset.state === 'idle'", timeout=120)
        page.evaluate("""(() => {
            const online = window.fetch;
            window.fetch = (url, options) => {
                if (url !== '/chat/completions') return online(url, options);
                const body = new ReadableStream({start(controller) { window.stream = controller; }});
                return Promise.resolve(new Response(body, {headers: {'Content-Type': 'text/event-stream'}}));
            };
            window.feed = (piece) => stream.enqueue(new TextEncoder().encode(
                piece.split('\\n').map((line) => 'data: ' + line).join('\\n') + '\\n\\n'));
        })()""")
        type_message(page, "Show me some code.")
        page.evaluate("document.getElementById('composer').requestSubmit()")
        page.wait_for("window.stream && document.body.dataset.state === 'streaming'")
        for count, (piece, html) in enumerate(pieces, 1):
            page.evaluate(f"feed({piece!r})")
            page.wait_for(f"document.getElementById('counter').textContent.startsWith('{count} tokens')")
            assert page.evaluate(f"{ANSWER}.innerHTML") == html
            if count == 1:
                page.evaluate(f"window.firstText = {ANSWER}.firstChild")
            assert page.evaluate(f"{ANSWER}.firstChild === firstText && firstText.data === 'Use '")
        assert page.evaluate(f"{ANSWER}.querySelector('img, b')") is None
        # Enter while the answer streams sends nothing, and the text typed stays.
        type_message(page, "And in Go?")
        page.evaluate(f"{INPUT}.dispatchEvent(new KeyboardEvent('keydown', {{key: 'Enter'}}))")
        assert page.evaluate(f"{INPUT}.value") == "And in Go?"
        assert page.evaluate("document.querySelectorAll('.message.user').length") == 1
        # The stream ends without a session (none was stored): the page renders its text whole.
        page.evaluate("stream.close()")
        page.wait_for("document.body.dataset.state === 'idle'")
        assert page.evaluate(f"{ANSWER}.innerHTML") == pieces[-1][1]


def test_a_message_that_fails_to_send_stays_in_the_box_to_send_again(bridge, http, server):
    with Browser() as browser:
        page = browser.open(f"{bridge.base_url}/")
        page.wait_for("document.body.dataset.state === 'idle'", timeout=120)
        choose_settings(page, **{"set-temperature": "0", "set-max-tokens": "128"})

        def assert_kept(text: str, shown: list, error: str) -> None:
            assert page.evaluate(f"{INPUT}.value") == text
            assert page.evaluate(SHOWN) == shown  # the failed turn is not on show
            assert page.evaluate("document.getElementById('error').hidden") is False
            assert error in page.evaluate("document.getElementById('error').textContent")

        # The network fails on a new chat's first message.
        page.evaluate(OFFLINE_FOR_TURNS)
        type_message(page, "Name a colour.")
        click_and_settle(page, "#send")
        assert_kept("Name a colour.", [], "Failed to fetch")

        # Back online, Send sends the same text again.
        page.evaluate("reconnect()")
        click_and_settle(page, "#send")
        assert page.evaluate(f"{INPUT}.value") == ""
        assert page.evaluate("document.getElementById('error').hidden") is True
        session, shown = page.evaluate(CURRENT), page.evaluate(SHOWN)
        assert [role for role, _ in shown] == ["message user", "message assistant"]
        assert shown[0][1] == "Name a colour."

        # The server refuses the next one: the engine is unloaded (and loaded again after).
        type_message(page, "Name a fruit.")
        server.call(server.server.engines.unload("default"))
        try:
            click_and_settle(page, "#send")
        finally:
            server.call(server.server.engines.load("default", raise_errors=True))
        assert_kept("Name a fruit.", shown, "unloaded")
        assert page.evaluate(CURRENT) == session
    assert [m["content"] for m in http.get(f"/chat/history/{session}").get_json()
            if m["role"] == "user"] == ["Name a colour."]
