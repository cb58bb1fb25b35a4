"""The `tokenwire` command: `serve` runs the server, `generate` streams a reply through the client,
`chat` holds a conversation in a server-side session.

`tokenwire --port 8080` (options with no subcommand, Kolosal's launch line) is `tokenwire serve`.
`serve`'s options are derived from the settings fields (server/config.py); a bad value from any
source exits with status 2 and a message naming the key, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import signal
import sys
import threading
import typing
from typing import Any, Sequence

from server import __version__
from server.config import ConfigError, Settings, load_settings, options

log = logging.getLogger("tokenwire")
EXIT_CONFIG = 2


def _flag_type(annotation: Any):
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    base = args[0] if args else annotation
    if typing.get_origin(base) is typing.Literal:
        return str
    return base if base in (int, float, str) else str


def _add_settings_flags(parser: argparse.ArgumentParser) -> None:
    for opt in options():
        if not (opt.flags or opt.off_flags):
            continue
        dest = "setting:" + opt.key
        env = ", ".join(opt.env)
        help_text = f"{opt.description} [{opt.key}; env {env}]"
        if opt.is_bool:
            if opt.flags:
                parser.add_argument(*opt.flags, dest=dest, action="store_const", const=True,
                                    default=None, help=help_text)
            if opt.off_flags:
                parser.add_argument(*opt.off_flags, dest=dest, action="store_const", const=False,
                                    default=None, help=f"Turn off {opt.key}.")
        elif opt.is_list:
            parser.add_argument(*opt.flags, dest=dest, action="append", default=None,
                                metavar="VALUE" if opt.secret else opt.key.split(".")[-1].upper(),
                                help=help_text + " (repeatable)")
        else:
            parser.add_argument(*opt.flags, dest=dest, type=_flag_type(opt.annotation),
                                default=None, metavar=opt.key.split(".")[-1].upper(),
                                help=help_text)


def _overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    layer: dict[str, dict[str, Any]] = {}
    for dest, value in vars(args).items():
        if dest.startswith("setting:") and value is not None:
            section, _, name = dest.removeprefix("setting:").partition(".")
            layer.setdefault(section, {})[name] = value
    return layer


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tokenwire", description="gRPC-first LLM inference server")
    parser.add_argument("--version", "-v", action="version", version=f"tokenwire {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the server with the configured (or embedded) model",
                                description="Settings precedence: defaults < --config file < "
                                            "environment < these flags. --cors-origin, "
                                            "--cors-method and --cors-header add to the "
                                            "configured (or default) lists.")
    serve.add_argument("--version", "-v", action="version", version=f"tokenwire {__version__}")
    serve.add_argument("--config", help="YAML, JSON or TOML config file (Kolosal's schema, and "
                                        "Kai's model_mapping, where they apply)")
    _add_settings_flags(serve)

    bridge = commands.add_parser("bridge", help="run the REST bridge alone, in front of a gRPC server")
    bridge.add_argument("--grpc-target", required=True, help="gRPC server address (HOST:PORT)")
    bridge.add_argument("--host", default="127.0.0.1", help="address to bind")
    bridge.add_argument("--port", type=int, default=8080, help="REST port (0: any free port)")
    bridge.add_argument("--threads", type=int, default=0,
                        help="worker threads, one per open request or stream (0: automatic)")
    bridge.add_argument("--max-request-size", type=int, default=16 * 1024 * 1024,
                        help="largest request body in bytes")
    bridge.add_argument("--request-timeout", type=float, default=30.0,
                        help="deadline of each non-streaming gRPC call, in seconds (504 past it)")
    bridge.add_argument("--log-level", default="INFO")
    bridge.add_argument("--runtime", choices=("gunicorn", "in-process"), default="gunicorn",
                        help="gunicorn's threaded workers in a child process, or werkzeug's "
                             "threaded server in this process (one process, less memory)")

    gen = commands.add_parser("generate", help="stream a reply from a running server")
    gen.add_argument("prompt", help="what to ask; sent as a user chat message unless --raw")
    gen.add_argument("--target", default="127.0.0.1:50051", help="server gRPC address (HOST:PORT)")
    gen.add_argument("--model", default="", help="engine id (default: the server's default engine)")
    gen.add_argument("--system", help="system message to put before the prompt")
    gen.add_argument("--raw", action="store_true", help="send the prompt as raw text, no chat template")
    gen.add_argument("--max-tokens", type=int, default=256)
    gen.add_argument("--temperature", type=float)
    gen.add_argument("--top-p", type=float)
    gen.add_argument("--top-k", type=int)
    gen.add_argument("--seed", type=int)
    gen.add_argument("--stop", action="append", default=[], help="stop sequence (repeatable)")
    gen.add_argument("--stats", action="store_true", help="print usage and timings to stderr")
    gen.add_argument("--timeout", type=float, help="deadline for the whole call, in seconds")
    gen.add_argument("--api-key", default=os.environ.get("TOKENWIRE_API_KEY"),
                     help="API key, when the server requires one (default: $TOKENWIRE_API_KEY)")

    from server import cli_models

    cli_models.add_parser(commands)
    pull = commands.add_parser(
        "pull", help="download a model file (URL or catalog name) into a running server's models "
                     "directory, with a progress bar",
        description="Exit status: 0 downloaded (and loaded with --auto-load); 1 the download "
                    "failed or was cancelled; 2 the server refused to start it (bad URL or name, "
                    "file exists, address not allowed, unknown catalog name); 3 the server could "
                    "not be reached; 130 interrupted (Ctrl-C cancels the download on the server "
                    "unless --detach).")
    pull.add_argument("source", help="an http(s):// URL, or a name from the server's catalog")
    pull.add_argument("--target", default="127.0.0.1:50051", help="server gRPC address (HOST:PORT)")
    pull.add_argument("--model-id", default="", help="model id (default: the file name without "
                                                     "its extension)")
    pull.add_argument("--filename", help="file name in the models directory")
    pull.add_argument("--sha256", help="SHA-256 the file must have")
    pull.add_argument("--auto-load", action="store_true", help="create an engine when done")
    pull.add_argument("--force", action="store_true", help="replace an existing file")
    pull.add_argument("--detach", action="store_true",
                      help="start the download, print its id and return")
    chat = commands.add_parser("chat", help="chat interactively in a server-side session",
                               description="Reads one message per line from stdin and streams "
                                           "each answer. Commands: /history, /rollback N, "
                                           "/session, /quit (or end of input).")
    chat.add_argument("--target", default="127.0.0.1:50051", help="server gRPC address (HOST:PORT)")
    chat.add_argument("--session", help="session id to continue or create (default: a new one)")
    chat.add_argument("--model", default="", help="engine id for a new session")
    chat.add_argument("--system", help="system prompt")
    chat.add_argument("--max-tokens", type=int, default=256)
    chat.add_argument("--temperature", type=float)
    chat.add_argument("--seed", type=int)
    chat.add_argument("--timeout", type=float, help="deadline for each answer, in seconds")
    return parser


def _bridge_options(settings: Settings, port: int):
    from rest_bridge.serve import DEFAULT_THREADS, BridgeOptions

    return BridgeOptions(
        host=settings.server.host, port=port,
        # More threads than the server admits requests, so that past max_connections a client
        # gets the server's immediate 503 rather than waiting in gunicorn's accept queue.
        threads=settings.server.worker_threads or max(DEFAULT_THREADS,
                                                      settings.server.max_connections + 8),
        graceful_timeout_s=settings.server.shutdown_grace_seconds,
        log_level=settings.logging.level,
        access_log=settings.logging.access_log,
        keepalive_s=settings.server.idle_timeout,
        header_timeout_s=min(settings.server.request_timeout, settings.server.idle_timeout),
        runtime=settings.server.bridge)


def _local_target(host: str, port: int) -> str:
    """Where a process on this machine reaches a server bound to `host`."""
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def _serve(settings: Settings) -> int:
    from rest_bridge.config import BridgeConfig
    from rest_bridge.serve import start_bridge
    from server.app import create_server

    if settings.auth.bridge_secret is None:
        # Lets the server believe the client address our own bridge forwards, and nobody else's.
        settings.auth.bridge_secret = secrets.token_urlsafe(32)
    try:
        server, port = await create_server(settings)
    except OSError as exc:
        print(f"tokenwire: {exc}", file=sys.stderr)
        return 1
    # Scripts (and tests) read these lines to find ports chosen with --grpc-port 0 / --port 0.
    print(f"tokenwire: gRPC listening on {settings.server.host}:{port}", flush=True)
    bridge_config = BridgeConfig(grpc_target=_local_target(settings.server.host, port),
                                 max_request_size=settings.server.max_request_size,
                                 trace_exporter=settings.tracing.exporter,
                                 otlp_endpoint=settings.tracing.otlp_endpoint,
                                 trace_service_name=f"{settings.tracing.service_name}-bridge",
                                 request_timeout_s=settings.server.request_timeout,
                                 bridge_secret=settings.auth.bridge_secret.get_secret_value())
    try:
        bridge = start_bridge(bridge_config, _bridge_options(settings, settings.server.port))
    except Exception as exc:  # the port, or (in-process) building the app: either way, stop cleanly
        print(f"tokenwire: cannot start the REST bridge on port {settings.server.port}: {exc}",
              file=sys.stderr)
        await server.shutdown(0)
        return 1
    print(f"tokenwire: REST listening on {settings.server.host}:{bridge.port}", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    bridge_exit = asyncio.ensure_future(asyncio.to_thread(bridge.wait))
    stopped = asyncio.ensure_future(stop.wait())
    startup = asyncio.ensure_future(server.failed_startup_loads())
    await asyncio.wait({bridge_exit, stopped, startup}, return_when=asyncio.FIRST_COMPLETED)
    status = 0
    if startup.done() and startup.exception() is not None:
        print(f"tokenwire: starting the configured models failed: {startup.exception()}; stopping",
              file=sys.stderr, flush=True)
        status = 1
    elif startup.done() and startup.result():
        # The engines asked for at start must serve: a server without them is not what was
        # started, and an exit status is what a supervisor (systemd, Kubernetes) acts on.
        for engine in startup.result():
            path = engine.model_path
            named = f" ({path})" if path and path not in engine.error else ""
            print(f"tokenwire: engine '{engine.id}' failed to load{named}: {engine.error}; "
                  "stopping", file=sys.stderr, flush=True)
        status = 1
    elif not (bridge_exit.done() or stopped.done()):
        await asyncio.wait({bridge_exit, stopped}, return_when=asyncio.FIRST_COMPLETED)
    startup.cancel()
    if bridge_exit.done():
        log.error("the REST bridge exited unexpectedly (status %s); stopping", bridge_exit.result())
        status = 1
    else:
        bridge.stop()
    log.info("shutting down: draining for up to %.1fs", settings.server.shutdown_grace_seconds)
    await server.shutdown()
    # The drain ended the streams the bridge relays; its requests end with them.
    await asyncio.to_thread(bridge.finish, settings.server.shutdown_grace_seconds + 10)
    stopped.cancel()
    log.info("stopped")
    return status


def _bridge(args: argparse.Namespace) -> int:
    from rest_bridge.config import BridgeConfig
    from rest_bridge.serve import DEFAULT_THREADS, BridgeOptions, start_bridge

    # The same variable the server reads for auth.bridge_secret: set it for both processes so the
    # server rate-limits by the address of the bridge's clients.
    config = BridgeConfig(grpc_target=args.grpc_target, max_request_size=args.max_request_size,
                          request_timeout_s=args.request_timeout,
                          bridge_secret=os.environ.get("TOKENWIRE_AUTH_BRIDGE_SECRET", ""))
    options = BridgeOptions(host=args.host, port=args.port,
                                   threads=args.threads or DEFAULT_THREADS, log_level=args.log_level,
                                   runtime=args.runtime)
    if args.runtime == "in-process":
        from server.config import LoggingSettings
        from server.log_config import configure_logging

        configure_logging(LoggingSettings(level=args.log_level))
    try:
        bridge = start_bridge(config, options)
    except Exception as exc:  # as in _serve: the port, or building the in-process app
        print(f"tokenwire: cannot start the REST bridge on {args.host}:{args.port}: {exc}",
              file=sys.stderr)
        return 1
    print(f"tokenwire: REST listening on {args.host}:{bridge.port}", flush=True)
    stop = threading.Event()
    threading.Thread(target=lambda: (bridge.wait(), stop.set()), name="bridge-exit",
                     daemon=True).start()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _received, _frame: stop.set())
    stop.wait()
    bridge.stop()  # stop accepting; requests in flight finish
    bridge.finish(options.graceful_timeout_s + 10)
    status = bridge.wait()
    return 0 if status in (0, -signal.SIGTERM, -signal.SIGINT) else status


def _generate(args: argparse.Namespace) -> int:
    from tokenwire import Client, TokenwireError

    messages = None
    if not args.raw:
        messages = ([{"role": "system", "content": args.system}] if args.system else [])
        messages.append({"role": "user", "content": args.prompt})
    sampling = {k: v for k, v in (("temperature", args.temperature), ("top_p", args.top_p),
                                  ("top_k", args.top_k), ("seed", args.seed)) if v is not None}
    try:
        with Client(args.target, timeout=args.timeout, api_key=args.api_key) as client:
            final = None
            for delta in client.generate(args.prompt if args.raw else None, messages=messages,
                                         model=args.model, max_tokens=args.max_tokens,
                                         stop=args.stop, **sampling):
                sys.stdout.write(delta.text)
                sys.stdout.flush()
                final = delta
            sys.stdout.write("\n")
    except TokenwireError as exc:
        print(f"\ntokenwire: {exc}", file=sys.stderr)
        return 1
    if args.stats and final is not None and final.usage is not None:
        print(f"[{final.finish_reason}; {final.usage.prompt_tokens} prompt + "
              f"{final.usage.completion_tokens} completion tokens; "
              f"{final.timings.tokens_per_second:.1f} tokens/s; "
              f"first token after {final.timings.time_to_first_token_ms:.0f} ms]", file=sys.stderr)
    return 0


def _chat_command(client, session_id: str, line: str) -> bool:
    """Runs a /command; False if the line is not one."""
    name, _, arg = line.partition(" ")
    if name == "/history":
        for message in client.history(session_id):
            print(f"{message['role']}: {message['content']}")
    elif name == "/rollback":
        count = int(arg) if arg.strip().lstrip("-").isdigit() else 2
        session = client.rollback_session(session_id, count)
        print(f"[rolled back {count}; {session.message_count} messages left]")
    elif name == "/session":
        print(session_id)
    else:
        return False
    return True


def _chat(args: argparse.Namespace) -> int:
    import uuid

    from tokenwire import Client, TokenwireError

    session_id = args.session or str(uuid.uuid4())
    sampling = {k: v for k, v in (("temperature", args.temperature), ("seed", args.seed))
                if v is not None}
    interactive = sys.stdin.isatty()
    with Client(args.target) as client:
        print(f"[session {session_id}]", file=sys.stderr, flush=True)
        while True:
            if interactive:
                print("> ", end="", flush=True)
            line = sys.stdin.readline()
            if not line:
                return 0
            line = line.strip()
            if not line:
                continue
            if line in ("/quit", "/exit"):
                return 0
            try:
                if line.startswith("/") and _chat_command(client, session_id, line):
                    continue
                for delta in client.chat(session_id, line, create_if_missing=True, model=args.model,
                                         system_prompt=args.system, max_tokens=args.max_tokens,
                                         timeout=args.timeout, **sampling):
                    sys.stdout.write(delta.text)
                    sys.stdout.flush()
                sys.stdout.write("\n")
                sys.stdout.flush()
            except TokenwireError as exc:
                # One failed turn (busy session, bad rollback) does not end the conversation.
                print(f"\ntokenwire: {exc}", file=sys.stderr, flush=True)
            except KeyboardInterrupt:
                print("\n[answer cancelled; the history is unchanged]", file=sys.stderr, flush=True)


#: What `tokenwire` takes before its subcommands; anything else that starts with "-" is a serve
#: option: `tokenwire --port 8080` is `tokenwire serve --port 8080` (Kolosal's launch line).
TOP_LEVEL_OPTIONS = ("-h", "--help", "-v", "--version")


def _with_command(argv: Sequence[str]) -> list[str]:
    argv = list(argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in TOP_LEVEL_OPTIONS):
        return ["serve", *argv]
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(_with_command(sys.argv[1:] if argv is None else argv))
    if args.command == "generate":
        return _generate(args)
    if args.command == "pull":
        from server.cli_pull import pull

        return pull(args)
    if args.command == "chat":
        return _chat(args)
    if args.command == "bridge":
        return _bridge(args)
    if args.command == "models":
        from server import cli_models

        return cli_models.run(args)
    try:
        settings = load_settings(args.config, overrides=_overrides(args))
        settings.engine_specs()  # locates the embedded model now, so a missing one is a config error
        from server.app import check_model_files

        check_model_files(settings)
    except ConfigError as exc:
        print(f"tokenwire: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    from server.log_config import configure_logging

    from server.monitoring.tracing import configure_tracing

    configure_logging(settings.logging)
    configure_tracing(settings.tracing.exporter, service_name=settings.tracing.service_name,
                      otlp_endpoint=settings.tracing.otlp_endpoint)
    return asyncio.run(_serve(settings))


if __name__ == "__main__":
    sys.exit(main())
