const axios = require('axios');

class KolosalClient {
    constructor(baseUrl = 'http://localhost:8080', apiKey = null) {
        this.baseUrl = baseUrl;
        this.headers = { 'Content-Type': 'application/json' };
        if (apiKey) {
            this.headers['X-API-Key'] = apiKey;
        }
    }

    async chatCompletion(messages, model = 'gpt-3.5-turbo', options = {}) {
        const url = `${this.baseUrl}/v1/chat/completions`;
        const data = { model, messages, ...options };
        
        try {
            const response = await axios.post(url, data, { headers: this.headers });
            return response.data;
        } catch (error) {
            if (error.response) {
                throw new Error(`API Error ${error.response.status}: ${error.response.data.error?.message}`);
            }
            throw error;
        }
    }

    async addEngine(engineId, modelPath, options = {}) {
        const url = `${this.baseUrl}/engines`;
        const data = { engine_id: engineId, model_path: modelPath, ...options };
        
        const response = await axios.post(url, data, { headers: this.headers });
        return response.data;
    }

    async getMetrics() {
        const url = `${this.baseUrl}/metrics`;
        const response = await axios.get(url, { headers: this.headers });
        return response.data;
    }
}

// Usage
const client = new KolosalClient('http://localhost:8080', 'sk-your-key');

async function example() {
    try {
        // Chat completion
        const response = await client.chatCompletion([
            { role: 'user', content: 'Hello!' }
        ]);
        console.log(response.choices[0].message.content);

        // Add engine
        await client.addEngine('my-model', '/path/to/model.gguf', {
            n_ctx: 4096,
            n_gpu_layers: 50
        });

        // Get metrics
        const metrics = await client.getMetrics();
        console.log(`CPU: ${metrics.system.cpu.usage_percent}%`);
    } catch (error) {
        console.error('Error:', error.message);
    }
}

