// The generated messages and services most callers need, re-exported under one name.
export * from "../gen/tokenwire/v1/engine_service_pb.js";
export * from "../gen/tokenwire/v1/generation_pb.js";
export * from "../gen/tokenwire/v1/generation_service_pb.js";
