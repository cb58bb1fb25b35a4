package dev.tokenwire.client;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.BadRequest;
import com.google.rpc.ErrorInfo;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A failed call: the gRPC status code and message, with the server's rich error details
 * (google.rpc.ErrorInfo's reason and metadata, google.rpc.BadRequest's field violations).
 */
public final class TokenwireException extends RuntimeException {
  /** One field the server refused. */
  public record FieldViolation(String field, String description) {}

  private final Status.Code code;
  private final String reason;
  private final Map<String, String> metadata;
  private final List<FieldViolation> violations;

  private TokenwireException(Status.Code code, String message, String reason,
      Map<String, String> metadata, List<FieldViolation> violations, Throwable cause) {
    super(code + ": " + message, cause);
    this.code = code;
    this.reason = reason;
    this.metadata = Collections.unmodifiableMap(metadata);
    this.violations = Collections.unmodifiableList(violations);
  }

  /** The gRPC status code (INVALID_ARGUMENT, UNAUTHENTICATED, ...). */
  public Status.Code code() {
    return code;
  }

  /** google.rpc.ErrorInfo.reason, the server's stable machine-readable reason ("" if none). */
  public String reason() {
    return reason;
  }

  /** google.rpc.ErrorInfo.metadata. */
  public Map<String, String> metadata() {
    return metadata;
  }

  /** google.rpc.BadRequest's field violations, in the server's order. */
  public List<FieldViolation> violations() {
    return violations;
  }

  /** Converts what a stub threw; anything that is not a gRPC status is returned as it is. */
  static RuntimeException from(RuntimeException thrown) {
    if (thrown instanceof TokenwireException || !(thrown instanceof StatusRuntimeException)) {
      return thrown;
    }
    Status status = Status.fromThrowable(thrown);
    String reason = "";
    Map<String, String> metadata = new HashMap<>();
    List<FieldViolation> violations = new ArrayList<>();
    com.google.rpc.Status details = StatusProto.fromThrowable(thrown);
    if (details != null) {
      for (Any detail : details.getDetailsList()) {
        try {
          if (detail.is(ErrorInfo.class)) {
            ErrorInfo info = detail.unpack(ErrorInfo.class);
            reason = info.getReason();
            metadata.putAll(info.getMetadataMap());
          } else if (detail.is(BadRequest.class)) {
            for (BadRequest.FieldViolation v : detail.unpack(BadRequest.class).getFieldViolationsList()) {
              violations.add(new FieldViolation(v.getField(), v.getDescription()));
            }
          }
        } catch (InvalidProtocolBufferException malformed) {
          // A detail that does not parse is left out; the status itself still stands.
        }
      }
    }
    String message = status.getDescription() == null ? "" : status.getDescription();
    return new TokenwireException(status.getCode(), message, reason, metadata, violations, thrown);
  }
}
