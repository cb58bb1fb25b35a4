// The built-in chat page (reference document 003's "Web UI"), on the session API only:
// POST /chat/completions (kebab-case body, raw-token SSE, the session id in X-Session-Id),
// GET /sessions, GET|DELETE /chat/history/{id}, POST /v1/sessions/{id}:branch, GET /models and
// GET /readiness.
// Every text from the server reaches the page through textContent, never as HTML.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const SETTINGS_KEY = "tokenwire.chat.settings";
  const DEFAULTS = {temperature: 0.7, topP: 0.95, topK: 40, maxTokens: 512, repeatPenalty: 1.1,
                    systemPrompt: "", stop: "", apiKey: ""};
  const FIELDS = {temperature: "set-temperature", topP: "set-top-p", topK: "set-top-k",
                  maxTokens: "set-max-tokens", repeatPenalty: "set-repeat-penalty",
                  systemPrompt: "set-system-prompt", stop: "set-stop", apiKey: "set-api-key"};
  const READINESS_EVERY_MS = 5000;

  const state = {sessionId: null, messages: [], controller: null, branchAt: null,
                 settings: loadSettings()};

  // -- settings ---------------------------------------------------------------------------

  function loadSettings() {
    try {
      return Object.assign({}, DEFAULTS, JSON.parse(localStorage.getItem(SETTINGS_KEY) || "{}"));
    } catch (e) {
      return Object.assign({}, DEFAULTS);
    }
  }

  function bindSettings() {
    for (const [key, id] of Object.entries(FIELDS)) {
      const field = $(id);
      field.value = state.settings[key];
      field.addEventListener("change", () => {
        state.settings[key] = field.value;
        localStorage.setItem(SETTINGS_KEY, JSON.stringify(state.settings));
      });
    }
    $("toggle-settings").addEventListener("click", () => {
      const panel = $("settings");
      panel.hidden = !panel.hidden;
      $("toggle-settings").setAttribute("aria-expanded", String(!panel.hidden));
    });
  }

  // -- talking to the bridge ------------------------------------------------------------------

  function headers(json) {
    const h = {};
    if (json) h["Content-Type"] = "application/json";
    if (state.settings.apiKey) h["Authorization"] = "Bearer " + state.settings.apiKey;
    return h;
  }

  async function errorText(response) {
    try {
      const body = await response.json();
      const error = body.error;
      return typeof error === "string" ? error : (error && error.message) || body.message ||
        JSON.stringify(body);
    } catch (e) {
      return response.status + " " + response.statusText;
    }
  }

  async function api(method, path, body) {
    const response = await fetch(path, {method: method, headers: headers(body !== undefined),
                                        body: body === undefined ? undefined : JSON.stringify(body)});
    if (!response.ok) throw new Error(await errorText(response));
    return response.status === 204 ? null : response.json();
  }

  // One SSE event ("event:" and "data:" lines); data lines join with "\n", as the server split them.
  function parseEvent(block) {
    let type = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) type = line.slice(6).trim();
      else if (line.startsWith("data: ")) data.push(line.slice(6));
      else if (line.startsWith("data:")) data.push(line.slice(5));
    }
    return {type: type, data: data.length ? data.join("\n") : null};
  }

  // -- rendering --------------------------------------------------------------------------

  function button(label, onClick, className) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    if (className) b.className = className;
    b.addEventListener("click", onClick);
    return b;
  }

  // Text with ``` fenced code blocks, each with a copy button.
  function fillContent(element, text) {
    element.replaceChildren();
    text.split("```").forEach((part, i) => {
      if (i % 2 === 0) {
        if (part) element.appendChild(document.createTextNode(part));
        return;
      }
      const newline = part.indexOf("\n");
      const language = newline > 0 ? part.slice(0, newline).trim() : "";
      const code = newline >= 0 ? part.slice(newline + 1) : part;
      const pre = document.createElement("pre");
      const codeElement = document.createElement("code");
      if (language) codeElement.dataset.language = language;
      codeElement.textContent = code;
      pre.appendChild(codeElement);
      pre.appendChild(button("Copy", () => navigator.clipboard.writeText(code)));
      element.appendChild(pre);
    });
  }

  // The same rendering, grown as an answer streams in: each piece becomes new text nodes at the
  // end (or opens the next part), so the text already shown stays as it is and a long answer
  // costs work in proportion to its length, not to its square. A piece may end with one or two
  // backticks that the next one turns into a "```": they were shown as text, and go again.
  // Returns the function that takes the next piece.
  function growingContent(element) {
    element.replaceChildren();
    let part = 0;       // the open part: even ones are text, odd ones code
    let box = element;  // where the open part's text goes: the element itself, or a <code>
    let line = null;    // an open code part's text before its first newline (its language)
    let tail = "";      // the open part's last two characters, where a "```" may begin

    function show(text) {
      if (text) box.appendChild(document.createTextNode(text));
    }

    function takeBack(count) {  // the open part's last characters, all shown
      while (count > 0) {
        const node = box.lastChild;
        const cut = Math.min(count, node.length);
        if (cut === node.length) node.remove();
        else node.deleteData(node.length - cut, cut);
        count -= cut;
      }
    }

    function grow(text) {
      if (line !== null) {
        const newline = text.indexOf("\n");
        if (newline < 0) {
          line += text;
        } else {  // the first line was the language: the code starts after it
          const language = (line + text.slice(0, newline)).trim();
          box.replaceChildren();
          if (language) box.dataset.language = language;
          line = null;
          text = text.slice(newline + 1);
        }
      }
      show(text);
    }

    function nextPart() {
      part += 1;
      tail = "";
      if (part % 2 === 0) {
        box = element;
        line = null;
        return;
      }
      const pre = document.createElement("pre");
      const code = document.createElement("code");
      pre.appendChild(code);
      pre.appendChild(button("Copy", () => navigator.clipboard.writeText(code.textContent)));
      element.appendChild(pre);
      box = code;
      line = "";
    }

    return function append(piece) {
      for (;;) {
        const seen = tail + piece;
        const fence = seen.indexOf("```");
        if (fence < 0) {
          grow(piece);
          tail = seen.slice(-2);
          return;
        }
        if (fence < tail.length) takeBack(tail.length - fence);
        else grow(seen.slice(tail.length, fence));
        piece = seen.slice(fence + 3);
        nextPart();
      }
    };
  }

  function messageNode(message, index) {
    const node = document.createElement("article");
    node.className = "message " + message.role;
    node.dataset.index = String(index);
    const content = document.createElement("div");
    content.className = "content";
    fillContent(content, message.content);
    node.appendChild(content);
    const actions = document.createElement("div");
    actions.className = "actions";
    if (message.role === "user") actions.appendChild(button("Edit", () => startEdit(index)));
    if (message.role === "assistant" && index === state.messages.length - 1) {
      actions.appendChild(button("Regenerate", regenerate));
    }
    if (actions.childElementCount) node.appendChild(actions);
    return node;
  }

  function render() {
    const box = $("messages");
    box.replaceChildren(...state.messages.map(messageNode));
    box.scrollTop = box.scrollHeight;
  }

  function showError(text) {
    $("error").textContent = text;
    $("error").hidden = !text;
  }

  function busy(on) {
    $("send").disabled = on;
    $("stop").hidden = !on;
  }

  // "loading", "streaming" or "idle", on <body data-state>: for styles, and for anything that
  // drives the page (a browser test waits for "idle").
  function pageState(name) {
    document.body.dataset.state = name;
  }

  function counter(tokens, firstAt) {
    const seconds = (performance.now() - firstAt) / 1000;
    const rate = tokens > 1 && seconds > 0 ? ((tokens - 1) / seconds).toFixed(1) : "…";
    $("counter").textContent = tokens + " tokens · " + rate + " tok/s";
  }

  // -- sessions ---------------------------------------------------------------------------

  async function refreshSessions() {
    let ids = [];
    try {
      ids = await api("GET", "/sessions");
    } catch (e) {
      showError(e.message);
      return;
    }
    const list = $("sessions");
    list.replaceChildren(...ids.map((id) => {
      const item = document.createElement("li");
      if (id === state.sessionId) item.className = "current";
      item.appendChild(button(id, () => openSession(id), "open"));
      item.appendChild(button("×", () => deleteSession(id), "delete"));
      return item;
    }));
  }

  async function fetchHistory(id) {
    state.messages = await api("GET", "/chat/history/" + encodeURIComponent(id));
    state.sessionId = id;
  }

  async function openSession(id) {
    if (state.controller) return;
    try {
      await fetchHistory(id);
      cancelEdit();
      showError("");
      render();
      await refreshSessions();
    } catch (e) {
      showError(e.message);
    }
  }

  async function deleteSession(id) {
    try {
      await api("DELETE", "/chat/history/" + encodeURIComponent(id));
      if (id === state.sessionId) newChat();
      await refreshSessions();
    } catch (e) {
      showError(e.message);
    }
  }

  function newChat() {
    if (state.controller) return;
    state.sessionId = null;
    state.messages = [];
    cancelEdit();
    showError("");
    $("counter").textContent = "";
    render();
    refreshSessions();
  }

  // -- a turn -----------------------------------------------------------------------------

  function requestBody(text) {
    const s = state.settings;
    const body = {"model-name": $("model").value, prompt: text, "max-token": Number(s.maxTokens),
                  temperature: Number(s.temperature), "top-p": Number(s.topP),
                  "top-k": Number(s.topK), "repeat-penalty": Number(s.repeatPenalty)};
    if (state.sessionId) body["session-id"] = state.sessionId;
    else if (s.systemPrompt) body["system-prompt"] = s.systemPrompt;
    const stop = String(s.stop).split("\n").map((x) => x.trim()).filter(Boolean);
    if (stop.length) body.stop = stop;
    return body;
  }

  // A new session holding the history before the message at `index` becomes the page's one.
  // The page shows the system prompt as the first message; the session counts it apart.
  async function branchBefore(index) {
    const shown = state.messages.length && state.messages[0].role === "system" ? 1 : 0;
    const branch = await api("POST", "/v1/sessions/" + encodeURIComponent(state.sessionId) +
                             ":branch", {message_count: index - shown});
    state.sessionId = branch.session.sessionId || branch.session.session_id;
    state.messages = state.messages.slice(0, index);
  }

  // A message that failed goes back to the message box, to be sent again (unless something new
  // was typed there meanwhile); its turn leaves the page, as it left the server's history.
  async function send(text) {
    if (state.controller || !text.trim()) return;
    showError("");
    if (state.branchAt !== null) {
      // Edit-and-regenerate: a new session holding the history before the edited message.
      try {
        await branchBefore(state.branchAt);
      } catch (e) {
        showError(e.message);
        giveBack(text);
        return;
      }
      cancelEdit();
    }
    if (await answer(text) === "failed") {
      state.messages = state.messages.slice(0, -2);
      giveBack(text);
    }
    await settle();
  }

  function giveBack(text) {
    if (!$("input").value) $("input").value = text;
  }

  // Streams one turn into the page: "stored" when its answer was (the server stores a turn
  // before its last token, so that is when the stream ended without an error or a stop),
  // "stopped" or "failed" (its error on show) when not.
  async function answer(text) {
    const body = requestBody(text);
    state.messages.push({role: "user", content: text}, {role: "assistant", content: ""});
    render();
    const reply = state.messages[state.messages.length - 1];
    const append = growingContent($("messages").lastElementChild.querySelector(".content"));
    state.controller = new AbortController();
    busy(true);
    pageState("streaming");
    let tokens = 0;
    let firstAt = null;
    try {
      const response = await fetch("/chat/completions", {
        method: "POST", headers: headers(true), body: JSON.stringify(body),
        signal: state.controller.signal});
      if (!response.ok) throw new Error(await errorText(response));
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffered = "";
      for (;;) {
        const chunk = await reader.read();
        if (chunk.done) break;
        buffered += decoder.decode(chunk.value, {stream: true});
        let end;
        while ((end = buffered.indexOf("\n\n")) >= 0) {
          const event = parseEvent(buffered.slice(0, end));
          buffered = buffered.slice(end + 2);
          if (event.type === "error") {
            let message = event.data;
            try { message = JSON.parse(event.data).error || message; } catch (e) { /* raw */ }
            throw new Error(typeof message === "string" ? message : JSON.stringify(message));
          }
          if (event.data === null) continue;  // a comment or keep-alive
          reply.content += event.data;
          tokens += 1;
          if (firstAt === null) firstAt = performance.now();
          append(event.data);
          counter(tokens, firstAt);
        }
      }
      // A new chat's session is stored with its first answer: a failed first turn leaves none.
      state.sessionId = response.headers.get("X-Session-Id") || state.sessionId;
      return "stored";
    } catch (e) {
      if (e.name === "AbortError") return "stopped";
      showError(e.message);
      return "failed";
    } finally {
      state.controller = null;
      busy(false);
    }
  }

  // The server's history is the truth: a stopped or failed turn was not stored. The turn's
  // error stays on show (opening a session would clear it).
  async function settle() {
    if (state.sessionId) {
      try {
        await fetchHistory(state.sessionId);
      } catch (e) {
        showError(e.message);
      }
      render();
      await refreshSessions();
    } else {
      render();
    }
    pageState("idle");
  }

  // Regenerate answers again in a branch without the last exchange, so that a failed or stopped
  // answer leaves the session and its previous answer as they were; a stored answer replaces
  // the session with the branch.
  async function regenerate() {
    const lastUser = state.messages.length - 2;
    if (state.controller || lastUser < 0 || state.messages[lastUser].role !== "user") return;
    const text = state.messages[lastUser].content;
    if (!state.sessionId) {  // the exchange was never stored: there is nothing to keep
      state.messages = state.messages.slice(0, lastUser);
      await send(text);
      return;
    }
    const original = state.sessionId;
    showError("");
    try {
      await branchBefore(lastUser);
    } catch (e) {
      showError(e.message);
      return;
    }
    const stored = await answer(text) === "stored";
    const discarded = stored ? original : state.sessionId;
    if (!stored) state.sessionId = original;
    try {
      await api("DELETE", "/chat/history/" + encodeURIComponent(discarded));
    } catch (e) {
      if ($("error").hidden) showError(e.message);  // the turn's own error tells more
    }
    await settle();
  }

  function startEdit(index) {
    if (state.controller) return;
    state.branchAt = index;
    $("input").value = state.messages[index].content;
    $("editing").hidden = false;
    $("input").focus();
  }

  function cancelEdit() {
    state.branchAt = null;
    $("editing").hidden = true;
  }

  function exportHistory() {
    const data = {session_id: state.sessionId, exported_at: new Date().toISOString(),
                  messages: state.messages};
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)],
                                             {type: "application/json"}));
    link.download = "chat-" + (state.sessionId || "new") + ".json";
    link.click();
    URL.revokeObjectURL(link.href);
  }

  // -- the page ---------------------------------------------------------------------------

  async function checkReadiness() {
    const status = $("status");
    try {
      const response = await fetch("/readiness", {headers: headers(false)});
      status.className = "status " + (response.ok ? "ready" : "loading");
      status.textContent = response.ok ? "ready" : "model loading";
    } catch (e) {
      status.className = "status offline";
      status.textContent = "offline";
    }
  }

  async function loadModels() {
    try {
      const answer = await api("GET", "/models");
      $("model").replaceChildren(...answer.models.map((id) => {
        const option = document.createElement("option");
        option.value = option.textContent = id;
        return option;
      }));
    } catch (e) {
      showError(e.message);
    }
  }

  function wire() {
    bindSettings();
    $("new-chat").addEventListener("click", newChat);
    $("export").addEventListener("click", exportHistory);
    $("stop").addEventListener("click", () => state.controller && state.controller.abort());
    $("cancel-edit").addEventListener("click", cancelEdit);
    $("composer").addEventListener("submit", (event) => {
      event.preventDefault();
      if (state.controller) return;  // Enter while an answer streams: the text stays to send later
      const text = $("input").value;
      $("input").value = "";
      send(text);
    });
    $("input").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        $("composer").requestSubmit();
      }
    });
  }

  // A link such as /?q=Hello&system=Be%20brief&temperature=0 starts a chat with that message;
  // system and temperature apply to that chat only (they are not saved).
  async function start() {
    wire();
    checkReadiness();
    setInterval(checkReadiness, READINESS_EVERY_MS);
    await Promise.all([loadModels(), refreshSessions()]);
    const params = new URLSearchParams(location.search);
    if (params.has("system")) state.settings.systemPrompt = params.get("system");
    if (params.has("temperature")) state.settings.temperature = params.get("temperature");
    if (params.get("q")) await send(params.get("q"));
    pageState("idle");
  }

  start();
})();
