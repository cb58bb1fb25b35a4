// Opens `count` sessions to the Rust service's WS /chat/ws one after the other, as the document's
// client does (send the kebab-case JSON on open, read text frames, wait for the server's close),
// and prints one JSON line per session: its close code, whether it was clean, the frames' text.
// A session whose `close` has not come `closeSeconds` after the server's close frame (readyState
// CLOSING) is reported as hung; how long the answer itself takes does not matter.
const [url, model, count, closeSeconds] = process.argv.slice(2);

function session(index) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    let text = '';
    let closingSince = null;
    const guard = setInterval(() => {
      if (ws.readyState !== WebSocket.CLOSING) return;
      closingSince ??= Date.now();
      if (Date.now() - closingSince > Number(closeSeconds) * 1000) {
        clearInterval(guard);
        resolve({ index, hung: true, readyState: ws.readyState, text });
      }
    }, 50);
    ws.onopen = () => ws.send(JSON.stringify({
      'model-name': model, prompt: 'Say hi', 'session-id': crypto.randomUUID(), 'max-token': 2,
      temperature: 0,
    }));
    ws.onmessage = (event) => { text += event.data; };
    ws.onerror = () => {};
    ws.onclose = (event) => {
      clearInterval(guard);
      resolve({ index, code: event.code, clean: event.wasClean, text });
    };
  });
}

for (let i = 0; i < Number(count); i++) {
  const result = await session(i);
  console.log(JSON.stringify(result));
  if (result.hung) break;  // one is enough to fail; the rest would each wait closeSeconds
}
process.exit(0);
