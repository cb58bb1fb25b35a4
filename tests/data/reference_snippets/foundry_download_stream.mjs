const modelName = 'Qwen2.5-3B-Instruct-Q4_K_M-GGUF';
const response = await fetch(
  `http://localhost:9500/iblink/v1/foundry-local/models/${modelName}/download-stream`,
  { method: 'POST' }
);

const reader = response.body.getReader();
const decoder = new TextDecoder();

while (true) {
  const { done, value } = await reader.read();
  if (done) break;

  const text = decoder.decode(value);
  const lines = text.split('\n');

  for (const line of lines) {
    if (line.startsWith('data: ')) {
      const data = JSON.parse(line.substring(6));

      if (data.type === 'progress') {
        console.log(`Progress: ${data.message}`);
      } else if (data.type === 'success') {
        console.log('Download complete!');
      } else if (data.type === 'error') {
        console.error(`Error: ${data.message}`);
      }
    }
  }
}
