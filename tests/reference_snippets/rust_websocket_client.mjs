const ws = new WebSocket("ws://localhost:3000/chat/ws");

ws.onopen = () => {
  ws.send(JSON.stringify({
    "model-name": "Qwen/Qwen2.5-0.5B-Instruct",
    "prompt": "Tell me a joke about Rust",
    "session-id": crypto.randomUUID(),
    "max-token": 100,
    "temperature": 0.8,
    "top-p": 0.95,
    "top-k": 40,
    "repeat-penalty": 1.1,
    "system-prompt": "You are a funny comedian",
    "device": "cuda"
  }));
};

ws.onmessage = (event) => {
  if (event.data.startsWith("__ERROR__")) {
    console.error("Error:", event.data);
  } else {
    process.stdout.write(event.data);
  }
};

ws.onclose = () => console.log("\nConnection closed");
ws.onerror = (error) => console.error("WebSocket error:", error);
