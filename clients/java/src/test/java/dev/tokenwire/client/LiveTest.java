package dev.tokenwire.client;

import dev.tokenwire.v1.ChatMessage;
import dev.tokenwire.v1.ChatMessages;
import dev.tokenwire.v1.Engine;
import dev.tokenwire.v1.FinishReason;
import dev.tokenwire.v1.GenerateRequest;
import dev.tokenwire.v1.GenerateResponse;
import dev.tokenwire.v1.SamplingParams;
import io.grpc.Status;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Live checks against a running `tokenwire serve` (started by tests/clients/test_java_client.py):
 * TOKENWIRE_TARGET is its gRPC address, TOKENWIRE_API_KEY the key it requires. The same six
 * checks as the Go and TypeScript clients' tests; prints "PASS name" or "FAIL name: why" per
 * check and exits 1 if any failed. A main, not JUnit: Debian's grpc-java needs nothing more.
 */
public final class LiveTest {
  private static final String TARGET = System.getenv("TOKENWIRE_TARGET");
  private static final String KEY = System.getenv("TOKENWIRE_API_KEY");
  private static final long DEADLINE_S = 240;
  // SmolLM2's end-of-generation tokens, banned so that a generation runs until it is cancelled.
  private static final Map<Integer, Float> BAN_END = Map.of(0, -100f, 2, -100f, 4, -100f);

  interface Check {
    void run() throws Exception;
  }

  static void expect(boolean condition, String why) {
    if (!condition) {
      throw new AssertionError(why);
    }
  }

  static TokenwireClient dial(boolean withKey) {
    return TokenwireClient.connect(TARGET, withKey ? KEY : null, DEADLINE_S);
  }

  static String defaultEngine(TokenwireClient client) {
    for (Engine engine : client.listEngines()) {
      if (engine.getIsDefault()) {
        return engine.getEngineId();
      }
    }
    throw new AssertionError("no default engine");
  }

  static void healthCheckIsServing() throws Exception {
    try (TokenwireClient client = dial(false)) {
      String status = client.checkHealth("");
      expect(status.equals("SERVING"), "health: " + status);
    }
  }

  static void listEngines() throws Exception {
    try (TokenwireClient client = dial(true)) {
      defaultEngine(client);
    }
  }

  static void streamsAChatGenerationTokenByToken() throws Exception {
    GenerateRequest request = GenerateRequest.newBuilder()
        .setChat(ChatMessages.newBuilder()
            .addMessages(ChatMessage.newBuilder().setRole("system").setContent("Answer in one word."))
            .addMessages(ChatMessage.newBuilder().setRole("user")
                .setContent("What is the capital of France?")))
        .setSampling(SamplingParams.newBuilder().setTemperature(0))
        .setMaxTokens(24)
        .build();
    try (TokenwireClient client = dial(true); GenerationStream stream = client.generate(request)) {
      StringBuilder text = new StringBuilder();
      int messages = 0;
      FinishReason finish = FinishReason.FINISH_REASON_UNSPECIFIED;
      while (stream.hasNext()) {
        GenerateResponse message = stream.next();
        messages++;
        text.append(message.getText());
        if (message.getFinishReason() != FinishReason.FINISH_REASON_UNSPECIFIED) {
          finish = message.getFinishReason();
        }
      }
      expect(messages >= 2 && text.toString().contains("Paris")
          && finish != FinishReason.FINISH_REASON_UNSPECIFIED,
          messages + " messages, text \"" + text + "\", finish " + finish);
    }
  }

  static void cancelMidwayFreesTheSequence() throws Exception {
    try (TokenwireClient client = dial(true)) {
      String engineId = defaultEngine(client);
      GenerationStream stream = client.generate(GenerateRequest.newBuilder()
          .setPrompt("Once upon a time")
          .setSampling(SamplingParams.newBuilder().setTemperature(0).putAllLogitBias(BAN_END))
          .setMaxTokens(3000)
          .build());
      for (int received = 0; received < 3; ) {
        if (!stream.next().getText().isEmpty()) {
          received++;
        }
      }
      int active = client.getEngine(engineId).getScheduler().getActiveSequences();
      expect(active == 1, "while streaming: " + active + " active sequences");
      stream.cancel();
      try {
        while (stream.hasNext()) {
          stream.next();
        }
        throw new AssertionError("the stream ended normally after cancel()");
      } catch (TokenwireException e) {
        expect(e.code() == Status.Code.CANCELLED, "after cancel: " + e);
      }
      long deadline = System.nanoTime() + 30_000_000_000L;
      while (client.getEngine(engineId).getScheduler().getActiveSequences() != 0) {
        expect(System.nanoTime() < deadline, "the server still runs the cancelled sequence after 30 s");
        Thread.sleep(50);
      }
    }
  }

  static void invalidArgumentCarriesTheFieldViolation() throws Exception {
    try (TokenwireClient client = dial(true)) {
      try (GenerationStream stream = client.generate(GenerateRequest.newBuilder()
          .setPrompt("hi").setSampling(SamplingParams.newBuilder().setTopP(2)).build())) {
        stream.hasNext();
        throw new AssertionError("top_p 2 was accepted");
      } catch (TokenwireException e) {
        expect(e.code() == Status.Code.INVALID_ARGUMENT, "want INVALID_ARGUMENT, got " + e);
        expect(e.violations().stream().anyMatch(v -> v.field().equals("sampling.top_p")),
            "no sampling.top_p violation in " + e.violations());
      }
    }
  }

  static void unauthenticatedWithoutKeySuccessWithKey() throws Exception {
    try (TokenwireClient client = dial(false)) {
      client.listEngines();
      throw new AssertionError("listEngines without a key succeeded");
    } catch (TokenwireException e) {
      expect(e.code() == Status.Code.UNAUTHENTICATED && !e.reason().isEmpty(),
          "want UNAUTHENTICATED with a reason, got " + e + " reason '" + e.reason() + "'");
    }
    try (TokenwireClient client = dial(true)) {
      client.listEngines();
    }
  }

  public static void main(String[] args) {
    if (TARGET == null || KEY == null) {
      System.err.println("TOKENWIRE_TARGET and TOKENWIRE_API_KEY must be set");
      System.exit(2);
    }
    Map<String, Check> checks = new LinkedHashMap<>();
    checks.put("HealthCheckIsServing", LiveTest::healthCheckIsServing);
    checks.put("ListEngines", LiveTest::listEngines);
    checks.put("StreamsAChatGenerationTokenByToken", LiveTest::streamsAChatGenerationTokenByToken);
    checks.put("CancelMidwayFreesTheSequence", LiveTest::cancelMidwayFreesTheSequence);
    checks.put("InvalidArgumentCarriesTheFieldViolation",
        LiveTest::invalidArgumentCarriesTheFieldViolation);
    checks.put("UnauthenticatedWithoutKeySuccessWithKey",
        LiveTest::unauthenticatedWithoutKeySuccessWithKey);
    int failed = 0;
    for (Map.Entry<String, Check> check : checks.entrySet()) {
      try {
        check.getValue().run();
        System.out.println("PASS " + check.getKey());
      } catch (Throwable e) {
        failed++;
        System.out.println("FAIL " + check.getKey() + ": " + e);
        e.printStackTrace(System.out);
      }
    }
    System.out.println(failed == 0 ? "ok" : failed + " failed");
    System.exit(failed == 0 ? 0 : 1);
  }
}
