// Preloaded with `node --import` before a reference snippet: the snippet is run as written, and
// this reports what its WebSocket saw when it closed (the document's `onclose` prints no code).
const Native = globalThis.WebSocket;
globalThis.WebSocket = class extends Native {
  constructor(...args) {
    super(...args);
    this.addEventListener('close', (event) => {
      console.log(`[close] code=${event.code} clean=${event.wasClean}`);
    });
  }
};
