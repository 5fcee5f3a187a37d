"""``kneehip serve``: the classroom web page (Starlette + uvicorn, the ``serve`` extra).

Added to the parser by :mod:`kneehip_bn.cli` through :func:`add_commands`; starlette and
uvicorn are imported only when the command runs, and their absence is one clear line
telling the user what to install.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from kneehip_bn._util.text import DISCLAIMER
from kneehip_bn.model.yamlio import load_spec

# lazy imports: kneehip_bn.serve imports starlette (the optional "serve" extra): 62 ms on top
# of `import kneehip_bn` (measured), paid only by `kneehip serve`; without the extra the
# other commands still run and `kneehip serve` says what to install in one line

__all__ = ["INSTALL_HINT", "add_commands", "serve_warning"]

INSTALL_HINT = ('the classroom page needs starlette and uvicorn: pip install '
                '"kneehip_bn[serve]"')

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def add_commands(subparsers: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    """Add ``kneehip serve`` to the parser."""
    sv = subparsers.add_parser(
        "serve", formatter_class=argparse.RawDescriptionHelpFormatter,
        help="start the classroom web page (students open it in a browser)",
        description="Start the classroom web page and its JSON API for one model (fixed "
                    "while the server runs). By default only this computer can open it "
                    "(127.0.0.1); --host 0.0.0.0 lets others on the network reach it.\n\n"
                    + DISCLAIMER,
        epilog="examples:\n  kneehip serve                      # http://127.0.0.1:8000\n"
               "  kneehip serve --model knee_hip_basic --port 8080\n"
               "  kneehip serve --model my_model.yaml --host 0.0.0.0 --cases my_cases.yaml")
    sv.add_argument("--model", metavar="PATH|NAME", default=None,
                    help="model file, or a shipped model's name (default: knee_hip)")
    sv.add_argument("--host", default="127.0.0.1",
                    help="address to listen on (default 127.0.0.1: this computer only)")
    sv.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    sv.add_argument("--cases", action="append", default=[], metavar="PATH",
                    help="an extra case-library YAML file for teaching mode (repeatable)")
    sv.set_defaults(func=cmd_serve)


def serve_warning(host: str) -> str | None:
    """The warning printed when the server is reachable from other computers."""
    if host in _LOOPBACK or host.startswith("127."):
        return None
    return (f"WARNING: listening on {host}: anyone who can reach this computer on the network "
            "can now open the page and use the API. Use it on a classroom network you trust; "
            "the server reads no files and keeps no data, but it is not hardened for the "
            "open internet. Stop it with Ctrl+C.")


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the server until interrupted."""
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ModuleNotFoundError:
        print(f"error: {INSTALL_HINT}", file=sys.stderr)
        return 1
    from kneehip_bn.serve import create_app  # lazy: see the line at the top

    spec = load_spec(args.model)
    app = create_app(spec, cases=args.cases)
    skipped = app.state.skipped_cases
    if skipped:
        print(f"note: {len(skipped)} shipped teaching case(s) for '{spec.name}' left out: "
              f"written for another edition of the model (first: "
              f"{skipped[0]['reason'][:160]}...)",
              file=sys.stderr)
    warn = serve_warning(args.host)
    if warn:
        print(warn, file=sys.stderr)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"kneehip classroom: model {spec.name} ({len(spec.nodes)} nodes), "
          f"{app.state.cases} teaching cases; open http://{shown}:{args.port}/ "
          "(API docs at /docs). Teaching model, NOT a medical device.", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
