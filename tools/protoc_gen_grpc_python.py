"""A protoc plugin that runs grpcio-tools' bundled gRPC Python generator.

buf calls plugins over the protoc plugin protocol, but grpcio-tools compiles its gRPC generator
into a Python extension instead of shipping a `protoc-gen-grpc_python` executable. This shim
bridges the two: it writes the request's files to a descriptor set, runs grpcio-tools' protoc on
it, and returns what that produced. Using grpcio-tools (pinned in requirements.txt) keeps the
generated stubs in step with the grpcio runtime.
"""

import pathlib
import sys
import tempfile

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2
from grpc_tools import protoc


def main() -> int:
    request = plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())
    response = plugin_pb2.CodeGeneratorResponse(
        supported_features=plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
    )
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        descriptor_set = work / "request.binpb"
        descriptor_set.write_bytes(
            descriptor_pb2.FileDescriptorSet(file=request.proto_file).SerializeToString()
        )
        out = work / "out"
        out.mkdir()
        args = ["protoc", f"--descriptor_set_in={descriptor_set}", f"--grpc_python_out={out}"]
        if protoc.main(args + list(request.file_to_generate)) != 0:
            response.error = "grpc_tools.protoc failed to generate gRPC stubs"
        else:
            for path in sorted(out.rglob("*.py")):
                response.file.add(name=str(path.relative_to(out)), content=path.read_text())
    sys.stdout.buffer.write(response.SerializeToString())
    return 0


if __name__ == "__main__":
    sys.exit(main())
