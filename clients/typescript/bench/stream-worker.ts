// Benchmark worker for bench/clients.py: reads one JSON request per stdin line
// ({"target", "prompt", "max_tokens", "logit_bias"}), streams it through the TypeScript client and
// writes one JSON line of client-side timings ({"tokens", "ttft_ms", "decode_tps", "e2e_tps",
// "server_tps", "finish_reason", "text"}). One connection for the worker's life, as an app keeps.
import { createInterface } from "node:readline";

import { FinishReason } from "../gen/tokenwire/v1/generation_pb.js";
import { TokenwireClient } from "../src/index.js";

let client: TokenwireClient | undefined;
for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const job = JSON.parse(line) as { target: string; prompt: string; max_tokens: number;
                                    logit_bias: Record<string, number> };
  client ??= new TokenwireClient(job.target, { timeoutMs: 300_000 });
  const logitBias: Record<number, number> = {};
  for (const [token, bias] of Object.entries(job.logit_bias)) logitBias[Number(token)] = bias;
  const sent = performance.now();
  let first = 0, last = 0, tokens = 0, serverTps = 0, finish = "";
  const text: string[] = [];
  for await (const delta of client.generate({
    input: { case: "prompt", value: job.prompt }, maxTokens: job.max_tokens,
    sampling: { temperature: 0, logitBias },
  })) {
    if (delta.tokenIds.length) {
      last = performance.now();
      if (!first) first = last;
      tokens += delta.tokenIds.length;
    }
    text.push(delta.text);
    if (delta.finishReason) {
      finish = FinishReason[delta.finishReason];
      serverTps = delta.timings?.tokensPerSecond ?? 0;
    }
  }
  process.stdout.write(JSON.stringify({
    tokens, ttft_ms: first - sent, decode_tps: (tokens - 1) / ((last - first) / 1000),
    e2e_tps: tokens / ((last - sent) / 1000), server_tps: serverTps, finish_reason: finish,
    text: text.join(""),
  }) + "\n");
}
