"""Small in-process IMAP4rev1 and POP3 servers on loopback, speaking just enough of each
protocol for Python's imaplib and poplib (what stats/bounces.py uses): login, list,
fetch, flag or delete, expunge. Plain TCP; TLS is the standard library's business."""

from __future__ import annotations

import re
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

USER, PASSWORD = "bounces@alpha.test", "mailbox-pw"


@dataclass
class StoredMessage:
    raw: bytes
    flags: set[str] = field(default_factory=set)


@dataclass
class Store:
    messages: list[StoredMessage] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)

    def add(self, raw: bytes) -> None:
        self.messages.append(StoredMessage(raw))


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, handler: type, store: Store) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.store = store
        self.lock = threading.Lock()


class _ImapHandler(socketserver.StreamRequestHandler):
    server: _Server

    def _send(self, text: str | bytes) -> None:
        self.wfile.write(text if isinstance(text, bytes) else text.encode())

    def handle(self) -> None:
        store = self.server.store
        self._send("* OK [CAPABILITY IMAP4rev1] fake IMAP ready\r\n")
        while line := self.rfile.readline():
            tag, _, rest = line.decode().rstrip("\r\n").partition(" ")
            command, _, args = rest.partition(" ")
            command = command.upper()
            if command == "UID":
                command, _, args = args.partition(" ")
                command = f"UID {command.upper()}"
            with self.server.lock:
                if command == "CAPABILITY":
                    self._send(f"* CAPABILITY IMAP4rev1\r\n{tag} OK done\r\n")
                elif command == "LOGIN":
                    user, password = (part.strip('"') for part in args.split(" ", 1))
                    store.logins.append((user, password))
                    if (user, password) == (USER, PASSWORD):
                        self._send(f"{tag} OK logged in\r\n")
                    else:
                        self._send(f"{tag} NO [AUTHENTICATIONFAILED] wrong\r\n")
                elif command == "SELECT":
                    self._send(
                        f"* {len(store.messages)} EXISTS\r\n* FLAGS (\\Seen \\Deleted)\r\n"
                        f"{tag} OK [READ-WRITE] selected\r\n"
                    )
                elif command == "UID SEARCH":
                    wanted = args.upper().split()
                    uids = [
                        str(uid)
                        for uid, message in enumerate(store.messages, 1)
                        if ("UNSEEN" not in wanted or "\\Seen" not in message.flags)
                        and ("UNDELETED" not in wanted or "\\Deleted" not in message.flags)
                    ]
                    self._send(f"* SEARCH {' '.join(uids)}\r\n{tag} OK done\r\n")
                elif command == "UID FETCH":
                    uid = int(args.split()[0])
                    raw = store.messages[uid - 1].raw
                    self._send(f"* {uid} FETCH (UID {uid} BODY[] {{{len(raw)}}}\r\n".encode())
                    self._send(raw + f")\r\n{tag} OK done\r\n".encode())
                elif command == "UID STORE":
                    uid_text, _, flags = args.partition(" ")
                    message = store.messages[int(uid_text) - 1]
                    message.flags |= set(re.findall(r"\\\w+", flags))
                    self._send(f"{tag} OK stored\r\n")
                elif command == "EXPUNGE":
                    store.messages[:] = [m for m in store.messages if "\\Deleted" not in m.flags]
                    self._send(f"{tag} OK expunged\r\n")
                elif command == "CLOSE":
                    self._send(f"{tag} OK closed\r\n")
                elif command == "LOGOUT":
                    self._send(f"* BYE\r\n{tag} OK bye\r\n")
                    return
                else:
                    self._send(f"{tag} BAD unknown command\r\n")


class _Pop3Handler(socketserver.StreamRequestHandler):
    server: _Server

    def _send(self, text: str | bytes) -> None:
        self.wfile.write(text if isinstance(text, bytes) else text.encode())

    def handle(self) -> None:
        store = self.server.store
        deleted: set[int] = set()
        user = ""
        self._send("+OK fake POP3 ready\r\n")
        while line := self.rfile.readline():
            command, _, args = line.decode().rstrip("\r\n").partition(" ")
            command = command.upper()
            with self.server.lock:
                if command == "USER":
                    user = args
                    self._send("+OK\r\n")
                elif command == "PASS":
                    store.logins.append((user, args))
                    ok = (user, args) == (USER, PASSWORD)
                    self._send("+OK logged in\r\n" if ok else "-ERR wrong\r\n")
                elif command == "STAT":
                    size = sum(len(m.raw) for m in store.messages)
                    self._send(f"+OK {len(store.messages)} {size}\r\n")
                elif command == "RETR":
                    raw = store.messages[int(args) - 1].raw
                    lines = raw.replace(b"\r\n", b"\n").split(b"\n")
                    stuffed = b"\r\n".join(b"." + x if x.startswith(b".") else x for x in lines)
                    self._send(b"+OK\r\n" + stuffed + b"\r\n.\r\n")
                elif command == "DELE":
                    deleted.add(int(args))
                    self._send("+OK deleted\r\n")
                elif command == "QUIT":
                    store.messages[:] = [
                        m for n, m in enumerate(store.messages, 1) if n not in deleted
                    ]
                    self._send("+OK bye\r\n")
                    return
                else:
                    self._send("-ERR unknown command\r\n")


@contextmanager
def _serving(handler: type, store: Store) -> Iterator[int]:
    server = _Server(handler, store)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def imap_server(store: Store):
    """``with imap_server(store) as port:`` an IMAP server for ``store``'s messages."""
    return _serving(_ImapHandler, store)


def pop3_server(store: Store):
    return _serving(_Pop3Handler, store)
