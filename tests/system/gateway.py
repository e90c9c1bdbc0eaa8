"""A TCP relay in front of the ZEGO emulator that can go down the way a dead host does: while it is
down nothing listens on its port, so every connection is refused by the kernel (ECONNREFUSED),
not accepted and dropped. Bound to 127.0.0.1; stops with its context."""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType


class Gateway:
    def __init__(self, target_port: int) -> None:
        self._target = ("127.0.0.1", target_port)
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._stopped = threading.Event()
        self._open: set[socket.socket] = set()
        self.port = self._listen(0)
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Gateway:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stopped.set()
        self.down()

    def down(self) -> None:
        """Stop listening and cut every relayed connection: from now on connections are refused."""
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._open = list(self._open), set()
        if listener is not None:
            # shutdown() wakes the thread blocked in accept() and stops the listening at once;
            # close() alone would leave the port listening until that accept() returned.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def up(self) -> None:
        """Listen again, on the same port (nothing to do if it is up)."""
        with self._lock:
            if self._listener is not None:
                return
        self._listen(self.port)

    def _listen(self, port: int) -> int:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(64)
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return int(listener.getsockname()[1])

    def _accept(self, listener: socket.socket) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed: the gateway went down
            try:
                upstream = socket.create_connection(self._target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open |= {client, upstream}
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, target), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)
