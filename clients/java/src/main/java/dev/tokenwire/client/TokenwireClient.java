package dev.tokenwire.client;

import dev.tokenwire.v1.Engine;
import dev.tokenwire.v1.EngineServiceGrpc;
import dev.tokenwire.v1.GenerateRequest;
import dev.tokenwire.v1.GenerateResponse;
import dev.tokenwire.v1.GenerationServiceGrpc;
import dev.tokenwire.v1.GetEngineRequest;
import dev.tokenwire.v1.ListEnginesRequest;
import io.grpc.Channel;
import io.grpc.ClientInterceptors;
import io.grpc.Context;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.stub.MetadataUtils;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A small typed wrapper over the generated tokenwire gRPC stubs (package dev.tokenwire.v1): the
 * API key on every call, streaming generation that can be cancelled, errors as
 * {@link TokenwireException} with the server's reason and field violations, and the
 * grpc.health.v1 check. The generated stubs stay reachable through {@link #channel()} for the
 * calls the wrapper lacks.
 */
public final class TokenwireClient implements AutoCloseable {
  private static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

  private final ManagedChannel managed;
  private final Channel channel;
  private final long deadlineSeconds;

  private TokenwireClient(ManagedChannel managed, String apiKey, long deadlineSeconds) {
    this.managed = managed;
    this.deadlineSeconds = deadlineSeconds;
    if (apiKey == null || apiKey.isEmpty()) {
      this.channel = managed;
    } else {
      Metadata headers = new Metadata();
      headers.put(AUTHORIZATION, "Bearer " + apiKey);
      this.channel = ClientInterceptors.intercept(managed,
          MetadataUtils.newAttachHeadersInterceptor(headers));
    }
  }

  /**
   * Connects to a server at target ("host:port") over plaintext; apiKey may be null. Every call
   * gets deadlineSeconds as its deadline.
   */
  public static TokenwireClient connect(String target, String apiKey, long deadlineSeconds) {
    ManagedChannel managed =
        Grpc.newChannelBuilder(target, InsecureChannelCredentials.create()).build();
    return new TokenwireClient(managed, apiKey, deadlineSeconds);
  }

  /** The channel with the API key attached, for the generated stubs of other services. */
  public Channel channel() {
    return channel;
  }

  /** Starts a streamed generation. */
  public GenerationStream generate(GenerateRequest request) {
    Context.CancellableContext context = Context.current().withCancellation();
    try {
      Iterator<GenerateResponse> messages = context.call(() -> GenerationServiceGrpc
          .newBlockingStub(channel).withDeadlineAfter(deadlineSeconds, TimeUnit.SECONDS)
          .generate(request));
      return new GenerationStream(context, messages);
    } catch (RuntimeException e) {
      context.cancel(e);
      throw TokenwireException.from(e);
    } catch (Exception e) {  // Context.call declares Exception; the stub throws none checked
      context.cancel(e);
      throw new IllegalStateException(e);
    }
  }

  /** Every engine the server knows, the default first. */
  public List<Engine> listEngines() {
    try {
      return engines().listEngines(ListEnginesRequest.getDefaultInstance()).getEnginesList();
    } catch (RuntimeException e) {
      throw TokenwireException.from(e);
    }
  }

  /** One engine, with its scheduler's state. */
  public Engine getEngine(String engineId) {
    try {
      return engines().getEngine(GetEngineRequest.newBuilder().setEngineId(engineId).build())
          .getEngine();
    } catch (RuntimeException e) {
      throw TokenwireException.from(e);
    }
  }

  /** grpc.health.v1 Check of a service ("" is the whole server): "SERVING", "NOT_SERVING", ... */
  public String checkHealth(String service) {
    try {
      return HealthGrpc.newBlockingStub(channel)
          .withDeadlineAfter(deadlineSeconds, TimeUnit.SECONDS)
          .check(HealthCheckRequest.newBuilder().setService(service).build())
          .getStatus().name();
    } catch (RuntimeException e) {
      throw TokenwireException.from(e);
    }
  }

  private EngineServiceGrpc.EngineServiceBlockingStub engines() {
    return EngineServiceGrpc.newBlockingStub(channel)
        .withDeadlineAfter(deadlineSeconds, TimeUnit.SECONDS);
  }

  @Override
  public void close() throws InterruptedException {
    managed.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
  }
}
