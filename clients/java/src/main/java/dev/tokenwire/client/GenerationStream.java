package dev.tokenwire.client;

import dev.tokenwire.v1.GenerateResponse;
import io.grpc.Context;
import java.util.Iterator;
import java.util.NoSuchElementException;

/**
 * A running generation, message by message: each holds the text added since the previous one;
 * the last carries the finish reason. {@link #cancel()} (or {@link #close()} before the end)
 * cancels the call, and the server stops the engine within one decode step. Failures surface from
 * {@link #hasNext()} and {@link #next()} as {@link TokenwireException}.
 */
public final class GenerationStream implements Iterator<GenerateResponse>, AutoCloseable {
  private final Context.CancellableContext context;
  private final Iterator<GenerateResponse> messages;

  GenerationStream(Context.CancellableContext context, Iterator<GenerateResponse> messages) {
    this.context = context;
    this.messages = messages;
  }

  @Override
  public boolean hasNext() {
    try {
      return messages.hasNext();
    } catch (RuntimeException e) {
      throw TokenwireException.from(e);
    }
  }

  @Override
  public GenerateResponse next() {
    if (!hasNext()) {
      throw new NoSuchElementException("the generation has ended");
    }
    try {
      return messages.next();
    } catch (RuntimeException e) {
      throw TokenwireException.from(e);
    }
  }

  /** Cancels the generation; the next hasNext() throws CANCELLED. */
  public void cancel() {
    context.cancel(null);
  }

  @Override
  public void close() {
    cancel();
  }
}
