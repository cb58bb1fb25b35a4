package dev.tokenwire.client;

import com.google.gson.Gson;
import com.google.gson.JsonObject;
import dev.tokenwire.v1.FinishReason;
import dev.tokenwire.v1.GenerateRequest;
import dev.tokenwire.v1.GenerateResponse;
import dev.tokenwire.v1.SamplingParams;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * Streams generations through the Java client: the runnable example of the client, and the worker
 * bench/clients.py times.
 *
 * <pre>
 *   java -cp ... dev.tokenwire.client.StreamCommand 127.0.0.1:50051 "Once upon a time" 32
 * </pre>
 * prints the text as it arrives. With "--bench" as the only argument it reads one JSON request
 * per stdin line ({"target", "prompt", "max_tokens", "logit_bias"}) and writes one JSON line of
 * client-side timings per request ({"tokens", "ttft_ms", "decode_tps", "e2e_tps", "server_tps",
 * "finish_reason", "text"}). The API key comes from $TOKENWIRE_API_KEY.
 */
public final class StreamCommand {
  private static final Gson GSON = new Gson();

  interface OnText {
    void accept(String text);
  }

  static JsonObject stream(TokenwireClient client, String prompt, int maxTokens,
      Map<Integer, Float> logitBias, OnText onText) {
    long sent = System.nanoTime();
    long first = 0;
    long last = 0;
    int tokens = 0;
    StringBuilder text = new StringBuilder();
    JsonObject result = new JsonObject();
    try (GenerationStream stream = client.generate(GenerateRequest.newBuilder()
        .setPrompt(prompt)
        .setSampling(SamplingParams.newBuilder().setTemperature(0).putAllLogitBias(logitBias))
        .setMaxTokens(maxTokens)
        .build())) {
      while (stream.hasNext()) {
        GenerateResponse message = stream.next();
        if (message.getTokenIdsCount() > 0) {
          last = System.nanoTime();
          if (first == 0) {
            first = last;
          }
          tokens += message.getTokenIdsCount();
        }
        text.append(message.getText());
        onText.accept(message.getText());
        if (message.getFinishReason() != FinishReason.FINISH_REASON_UNSPECIFIED) {
          result.addProperty("finish_reason", message.getFinishReason().name());
          result.addProperty("server_tps", message.getTimings().getTokensPerSecond());
        }
      }
    }
    result.addProperty("tokens", tokens);
    result.addProperty("ttft_ms", (first - sent) / 1e6);
    result.addProperty("decode_tps", (tokens - 1) / ((last - first) / 1e9));
    result.addProperty("e2e_tps", tokens / ((last - sent) / 1e9));
    result.addProperty("text", text.toString());
    return result;
  }

  public static void main(String[] args) throws Exception {
    String key = System.getenv("TOKENWIRE_API_KEY");
    if (args.length == 1 && args[0].equals("--bench")) {
      BufferedReader lines =
          new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
      TokenwireClient client = null;
      for (String line; (line = lines.readLine()) != null; ) {
        JsonObject job = GSON.fromJson(line, JsonObject.class);
        if (client == null) {
          client = TokenwireClient.connect(job.get("target").getAsString(), key, 300);
        }
        Map<Integer, Float> bias = new java.util.HashMap<>();
        job.getAsJsonObject("logit_bias").entrySet()
            .forEach(e -> bias.put(Integer.parseInt(e.getKey()), e.getValue().getAsFloat()));
        JsonObject result = stream(client, job.get("prompt").getAsString(),
            job.get("max_tokens").getAsInt(), bias, text -> { });
        System.out.println(GSON.toJson(result));
        System.out.flush();
      }
      if (client != null) {
        client.close();
      }
      return;
    }
    if (args.length != 3) {
      System.err.println("usage: StreamCommand TARGET PROMPT MAX_TOKENS | StreamCommand --bench");
      System.exit(2);
    }
    try (TokenwireClient client = TokenwireClient.connect(args[0], key, 300)) {
      stream(client, args[1], Integer.parseInt(args[2]), Map.of(), text -> {
        System.out.print(text);
        System.out.flush();
      });
      System.out.println();
    }
  }
}
