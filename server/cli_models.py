"""`tokenwire models`: the models on a running server's disk, or its catalog, as a table or JSON."""

from __future__ import annotations

import argparse
import json
import sys

import grpc
from google.protobuf.json_format import MessageToDict

from tokenwire.errors import from_rpc_error
from tokenwire.sizes import human_size  # the size format the REST families use
from tokenwire.v1 import model_service_pb2 as pb
from tokenwire.v1 import model_service_pb2_grpc as pb_grpc


def add_parser(commands) -> None:
    models = commands.add_parser("models", help="list a running server's local models (or its catalog)")
    models.add_argument("--target", default="127.0.0.1:50051", help="server gRPC address (HOST:PORT)")
    models.add_argument("--catalog", action="store_true", help="list the downloadable catalog instead")
    models.add_argument("--category", default="", help="with --catalog: only this category")
    models.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def run(args: argparse.Namespace) -> int:
    with grpc.insecure_channel(args.target) as channel:
        stub = pb_grpc.ModelServiceStub(channel)
        try:
            if args.catalog:
                answer = stub.ListCatalogModels(pb.ListCatalogModelsRequest(category=args.category),
                                                timeout=30)
            else:
                answer = stub.ListLocalModels(pb.ListLocalModelsRequest(), timeout=30)
        except grpc.RpcError as exc:
            print(f"tokenwire: {from_rpc_error(exc)}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps(MessageToDict(answer, preserving_proto_field_name=True), indent=2))
        return 0
    if args.catalog:
        rows = [["NAME", "SIZE", "QUANT", "PARAMS", "CATEGORIES", "DOWNLOADED", "LOADED"]]
        rows += [[m.name, human_size(m.size_bytes), m.quantization, m.parameters, ",".join(m.categories),
                  "yes" if m.is_downloaded else "no", "yes" if m.is_loaded else "no"]
                 for m in answer.models]
    else:
        rows = [["NAME", "SIZE", "QUANT", "PARAMS", "ARCH", "ENGINES", "LOADED"]]
        rows += [[m.name + (" (embedded)" if m.embedded else ""), human_size(m.size_bytes),
                  m.metadata.quantization or "?", m.metadata.size_label or "?",
                  m.metadata.architecture or (m.problem and "unreadable") or "?",
                  ",".join(m.engine_ids) or "-", "yes" if m.loaded else "no"]
                 for m in answer.models]
        print(f"models directory: {answer.directory}")
    print(_table(rows))
    return 0
