"""Run the classroom server in a background thread on a free loopback port.

For tests, the screenshot script and the load benchmark (``127.0.0.1`` only).

>>> from kneehip_bn.serve.background import running_server
>>> import urllib.request, json
>>> with running_server("knee_hip_basic") as url:
...     info = json.load(urllib.request.urlopen(url + "/api/model"))
>>> info["name"]
'knee_hip_basic'
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from kneehip_bn.serve.app import create_app

__all__ = ["free_port", "running_server"]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_server(model: Any = None, *, port: int | None = None, timeout: float = 30.0,
                   **app_options: Any) -> Iterator[str]:
    """Start ``create_app(model)`` under uvicorn on 127.0.0.1; yield its base URL; stop it."""
    import uvicorn

    app = create_app(model, **app_options)
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="kneehip-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the classroom server did not start on 127.0.0.1:{port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
