"""The redrive journal: which dead letters a copying redrive has already sent back, so that a
redrive whose delete failed is never sent twice.

SQS standard queues have no deduplication (MessageDeduplicationId is FIFO only), and a dead letter
copied back is two calls: SendMessage to the source queue, then DeleteMessage from the DLQ. When
the delete fails (throttled, network, the receipt handle expired), the letter is back in the DLQ
and on the source queue at once. The journal closes that gap:

1. after a send succeeds, the DLQ MessageIds of the batch are written here (fsync'd) ...
2. ... then the letters are deleted from the DLQ, and forgotten here once deleted.
3. A later redrive that receives a letter named here deletes it without sending it again.

SQS keeps a message's MessageId across receives, so the id recognises the letter. One file per
DLQ URL, in --journal DIR (default $XDG_STATE_HOME/zego-resume/redrive, else
~/.local/state/zego-resume/redrive). Entries older than the DLQ's longest retention (14 days) are
dropped: such a letter is gone from SQS anyway.

What it does not cover: a crash in the instant between a send's answer and the journal write
(that batch may be sent twice; lifting a ban twice changes nothing), and redrives of one DLQ run
from two machines (each has its own journal).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

RETENTION_SECONDS = 15 * 24 * 3600  # beyond SQS's longest retention, 14 days


def default_directory(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    state = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "zego-resume" / "redrive"


class JournalError(Exception):
    """The journal cannot be read or written: a copying redrive would not be safe to repeat."""


class Journal:
    """The ids of one DLQ's letters that were sent back and not yet deleted."""

    def __init__(self, directory: Path, dead_letter_queue_url: str, *, clock: float | None = None) -> None:
        digest = hashlib.sha256(dead_letter_queue_url.encode()).hexdigest()[:16]
        self.path = directory / f"{digest}.json"
        self.dead_letter_queue_url = dead_letter_queue_url
        self._now = time.time() if clock is None else clock
        self.sent: dict[str, float] = {}  # DLQ MessageId -> when it was sent back (Unix seconds)
        self._load()
        self._save()  # proves the directory is writable before anything moves

    def __contains__(self, message_id: object) -> bool:
        return message_id in self.sent

    def __len__(self) -> int:
        return len(self.sent)

    def record_sent(self, message_ids: Iterable[str]) -> None:
        """Written (and flushed to disk) before the letters are deleted from the DLQ."""
        ids = list(message_ids)
        if ids:
            now = time.time()
            self.sent.update((message_id, now) for message_id in ids)
            self._save()

    def forget(self, message_ids: Iterable[str]) -> None:
        """The letters are gone from the DLQ."""
        ids = [message_id for message_id in message_ids if message_id in self.sent]
        if ids:
            for message_id in ids:
                del self.sent[message_id]
            self._save()

    def _load(self) -> None:
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as error:
            raise JournalError(f"cannot read the redrive journal {self.path}: {_reason(error)}") from None
        sent = document.get("sent", {}) if isinstance(document, dict) else {}
        self.sent = {
            str(message_id): float(at)
            for message_id, at in sent.items()
            if isinstance(at, int | float) and self._now - at < RETENTION_SECONDS
        }

    def _save(self) -> None:
        document = {"dlqUrl": self.dead_letter_queue_url, "sent": self.sent}
        temporary: Path | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(
                "w", dir=self.path.parent, prefix=".journal-", delete=False, encoding="utf-8"
            ) as file:
                temporary = Path(file.name)
                json.dump(document, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)  # all or nothing: a crash never leaves half a journal
        except OSError as error:
            if temporary is not None:
                temporary.unlink(missing_ok=True)
            raise JournalError(f"cannot write the redrive journal {self.path}: {_reason(error)}") from None


def _reason(error: Exception) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__
