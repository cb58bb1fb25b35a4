/**
 * A small typed wrapper over the generated tokenwire client (protobuf-es v2 messages, Connect-ES
 * gRPC transport for Node). Every call carries the API key when one is given; failures become a
 * TokenwireError with the gRPC status, the google.rpc.ErrorInfo reason and the BadRequest field
 * violations the server sends in its status details.
 */
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

import { BadRequestSchema, ErrorInfoSchema } from "../gen/google/rpc/error_details_pb.js";
import { Health, HealthCheckResponse_ServingStatus } from "../gen/grpc/health/v1/health_pb.js";
import { EngineService, type Engine } from "../gen/tokenwire/v1/engine_service_pb.js";
import {
  GenerateRequestSchema,
  GenerationService,
  type GenerateResponse,
} from "../gen/tokenwire/v1/generation_service_pb.js";

export * as pb from "./pb.js";

/** One field the server refused, from google.rpc.BadRequest. */
export interface FieldViolation {
  field: string;
  description: string;
}

/** A failed call: the gRPC status plus the server's rich error details. */
export class TokenwireError extends Error {
  /** The gRPC status as its canonical name, e.g. "INVALID_ARGUMENT". */
  readonly status: string;
  /** Connect's numeric code (equal to the gRPC status number). */
  readonly code: Code;
  /** google.rpc.ErrorInfo.reason: the server's stable machine-readable reason, or "". */
  readonly reason: string;
  /** google.rpc.ErrorInfo.metadata. */
  readonly metadata: Record<string, string>;
  /** google.rpc.BadRequest.field_violations. */
  readonly violations: FieldViolation[];

  constructor(code: Code, message: string, reason: string, metadata: Record<string, string>,
              violations: FieldViolation[], options?: { cause?: unknown }) {
    super(`${statusName(code)}: ${message}`, options);
    this.name = "TokenwireError";
    this.code = code;
    this.status = statusName(code);
    this.reason = reason;
    this.metadata = metadata;
    this.violations = violations;
  }

  static from(error: unknown): TokenwireError {
    if (error instanceof TokenwireError) return error;
    const connect = ConnectError.from(error);
    const info = connect.findDetails(ErrorInfoSchema)[0];
    const violations = connect.findDetails(BadRequestSchema).flatMap((bad) =>
      bad.fieldViolations.map((v) => ({ field: v.field, description: v.description })));
    return new TokenwireError(connect.code, connect.rawMessage, info?.reason ?? "",
                              { ...(info?.metadata ?? {}) }, violations, { cause: error });
  }
}

// gRPC's canonical status names by number (Connect's numbers are gRPC's).
const STATUS_NAMES = ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
  "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
  "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
  "UNAUTHENTICATED"];

function statusName(code: Code): string {
  return STATUS_NAMES[code] ?? "UNKNOWN";
}

export type GenerateRequestInit = MessageInitShape<typeof GenerateRequestSchema>;

export interface ClientOptions {
  /** Sent as `authorization: Bearer <key>` on every call. */
  apiKey?: string;
  /** Default deadline of each call, in milliseconds. */
  timeoutMs?: number;
  /** A transport of your own (TLS, interceptors); `target` is then ignored. */
  transport?: Transport;
}

export interface CallOptions {
  /** Aborting cancels the call; the server stops the generation within one decode step. */
  signal?: AbortSignal;
  timeoutMs?: number;
}

export class TokenwireClient {
  readonly generation: Client<typeof GenerationService>;
  readonly engines: Client<typeof EngineService>;
  readonly healthService: Client<typeof Health>;
  private readonly timeoutMs?: number;

  /** `target`: "host:port" (plaintext) or a base URL such as "http://127.0.0.1:50051". */
  constructor(target: string, options: ClientOptions = {}) {
    const interceptors: Interceptor[] = [];
    const apiKey = options.apiKey;
    if (apiKey) {
      interceptors.push((next) => async (req) => {
        req.header.set("authorization", `Bearer ${apiKey}`);
        return next(req);
      });
    }
    const transport = options.transport ?? createGrpcTransport({
      baseUrl: target.includes("://") ? target : `http://${target}`,
      interceptors,
    });
    this.generation = createClient(GenerationService, transport);
    this.engines = createClient(EngineService, transport);
    this.healthService = createClient(Health, transport);
    this.timeoutMs = options.timeoutMs;
  }

  private options(call: CallOptions = {}) {
    return { signal: call.signal, timeoutMs: call.timeoutMs ?? this.timeoutMs };
  }

  /** Streams the generation: one message per text delta, the last with the finish reason. */
  async *generate(request: GenerateRequestInit, call: CallOptions = {}): AsyncGenerator<GenerateResponse> {
    try {
      for await (const response of this.generation.generate(create(GenerateRequestSchema, request),
                                                             this.options(call))) {
        yield response;
      }
    } catch (error) {
      throw TokenwireError.from(error);
    }
  }

  async listEngines(call: CallOptions = {}): Promise<Engine[]> {
    try {
      return (await this.engines.listEngines({}, this.options(call))).engines;
    } catch (error) {
      throw TokenwireError.from(error);
    }
  }

  async getEngine(engineId: string, call: CallOptions = {}): Promise<Engine> {
    try {
      const engine = (await this.engines.getEngine({ engineId }, this.options(call))).engine;
      if (!engine) throw new Error("GetEngine answered without an engine");
      return engine;
    } catch (error) {
      throw TokenwireError.from(error);
    }
  }

  /** grpc.health.v1 Check: "SERVING", "NOT_SERVING", ... ("" asks about the whole server). */
  async health(service = "", call: CallOptions = {}): Promise<string> {
    try {
      const answer = await this.healthService.check({ service }, this.options(call));
      return HealthCheckResponse_ServingStatus[answer.status];
    } catch (error) {
      throw TokenwireError.from(error);
    }
  }
}
