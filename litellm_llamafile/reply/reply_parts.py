"""What a reply scan has found so far: content (through the prose JSON scanner, which cuts bare calls out
of it), reasoning, and the calls, each a record that grows as its arguments arrive.

A call record is announced when the call becomes certain, gets its arguments in fragments, and ends
closed (a call) or dropped (never closed: its text was given back as content). The one-shot reply takes
the closed records; the stream takes each record's fragments as they come (`take_call_deltas`), so the
arguments a stream sends are the arguments the one-shot reply has, joined. A closed call that `accepts`
refuses (its tool's schema rejects it) is withheld from the stream: never announced if it was not yet,
else its last fragment is never sent, so its arguments never become JSON, as for a call cut off.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from .json_scanner import JsonScanner


def call_id(seed: str, index: int) -> str:
    """Deterministic id, so a streamed and a non-streamed parse of one reply agree."""
    digest = hashlib.sha256(f"{seed}\x00{index}".encode()).hexdigest()[:24]
    return f"call_{digest}"


@dataclass(slots=True)
class CallRecord:
    name: str
    parts: list[str] = field(default_factory=list)
    state: str = "open"  # open | closed | dropped
    sent: int = 0  # parts handed to the stream
    stream_index: int = -1  # its index in the stream's tool_calls, once announced
    withheld: bool | None = None  # closed, and refused by `accepts` (decided when the stream takes it)

    @property
    def arguments(self) -> str:
        return "".join(self.parts)


@dataclass(frozen=True, slots=True)
class CallDelta:
    """One streamed piece of a call, as OpenAI sends it: the first carries the id and the name."""

    index: int
    id: str | None
    name: str | None
    arguments: str


class ReplyParts:
    """Content, reasoning and calls found so far; each take returns only what is new since the last."""

    def __init__(self, names: frozenset[str]) -> None:
        self._json = JsonScanner(names)
        self.records: list[CallRecord] = []
        self._open: list[int] = []  # records announced and not closed, oldest first
        self._json_seen = 0  # bare calls of the JSON scanner already recorded
        self._content: list[str] = []
        self._content_taken = 0
        self._reasoning_parts: list[str] = []
        self._reasoning_taken = 0
        self._unsettled = 0  # records before this one are closed and sent, or dropped
        self._announced = 0
        # The stream's check of a closed call (name, arguments); None sends every closed call.
        self.accepts: Callable[[str, str], bool] | None = None

    @property
    def calls(self) -> list[tuple[str, str]]:
        """The closed calls, (name, arguments), in text order."""
        return [(r.name, r.arguments) for r in self.records if r.state == "closed"]

    # -- the sink the family readers report to ----------------------------------------------------------

    def open_call(self, name: str) -> int:
        self._json.settle()  # bare calls in the prose before this one come first
        self._record_bare_calls()
        self.records.append(CallRecord(name))
        self._open.append(len(self.records) - 1)
        return len(self.records) - 1

    def call_text(self, text: str) -> None:
        if text and self._open:
            self.records[self._open[-1]].parts.append(text)

    def close_call(self, index: int, tail: str) -> None:
        record = self.records[index]
        record.parts.append(tail)
        record.state = "closed"
        if index in self._open:
            self._open.remove(index)

    def prose(self, text: str) -> None:
        self._to_json(text)

    def drop_open_calls(self) -> None:
        for index in self._open:
            self.records[index].state = "dropped"
        self._open.clear()

    # -- content and reasoning ----------------------------------------------------------------------

    def take_content(self) -> str:
        self._drain()
        piece = "".join(self._content[self._content_taken :])
        self._content_taken = len(self._content)
        return piece

    def take_reasoning(self) -> str:
        parts = self._reasoning_parts
        piece = "".join(parts[self._reasoning_taken :])
        self._reasoning_taken = len(parts)
        return piece

    def full_reasoning(self) -> str:
        return "".join(self._reasoning_parts)

    def full_content(self) -> str:
        self._drain()
        return "".join(self._content)

    def _drain(self) -> None:
        """Move final content out of the JSON scanner after each step, so its window stays small."""
        piece = self._json.take_content()
        if piece:
            self._content.append(piece)
        self._record_bare_calls()

    def _record_bare_calls(self) -> None:
        calls = self._json.calls
        while self._json_seen < len(calls):
            name, arguments = calls[self._json_seen]
            self.records.append(CallRecord(name, [arguments], "closed"))
            self._json_seen += 1

    def _to_json(self, text: str) -> None:
        if text:
            self._json.feed(text)
            self._drain()

    def _to_content_unscanned(self, text: str, *, cut: bool) -> None:
        """Content never searched for calls: the text of a block that was not a (closed) call, which its
        family's reader already read (its markers stripped, it could only mislead the JSON scanner)."""
        if text:
            self._json.add_unscanned(text, cut=cut)
            self._drain()

    def _add_reasoning(self, text: str) -> None:
        if text:
            self._reasoning_parts.append(text)

    # -- the stream's view of the calls -----------------------------------------------------------------

    def take_call_deltas(self, id_seed: str) -> list[CallDelta]:
        """The calls' fragments that arrived since the last take: a call's first delta carries its id and
        name (its arguments follow in order); a dropped call sends nothing more."""
        deltas: list[CallDelta] = []
        for index in range(self._unsettled, len(self.records)):
            record = self.records[index]
            if record.state == "dropped" or (self._withheld(record) and record.stream_index < 0):
                continue
            first = record.stream_index < 0
            if first:
                record.stream_index = self._announced
                self._announced += 1
            upto = len(record.parts) - 1 if record.withheld else len(record.parts)
            piece = "".join(record.parts[record.sent : upto])
            record.sent = max(record.sent, upto)
            if first or piece:
                deltas.append(
                    CallDelta(
                        record.stream_index,
                        call_id(id_seed, index) if first else None,
                        record.name if first else None,
                        piece,
                    )
                )
        while self._unsettled < len(self.records) and self.records[self._unsettled].state != "open":
            self._unsettled += 1
        return deltas

    def _withheld(self, record: CallRecord) -> bool:
        if record.state == "closed" and record.withheld is None:
            record.withheld = self.accepts is not None and not self.accepts(record.name, record.arguments)
        return bool(record.withheld)
