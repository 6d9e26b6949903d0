"""A local calendar file as caldaemon last read or wrote it (issue 15: parsed calendars
cached, including our own writes).

A buffers file is rewritten by caldaemon in most rounds; scanning it again only to find
what caldaemon itself just wrote would make a round cost more as history grows. So the
document that was written is kept with the bytes it was written as, and the next round,
which finds the file holding exactly those bytes, neither scans nor parses its past.

The bytes decide, not the file's stat: a stat cannot tell an app's in-place save that
kept the size and set the modification time back within one tick of the clock, and a
stale document written back would lose that save. Comparing bytes that are already read
costs a memcmp. (An unchanged stat still spares the read itself: the provider's token.)"""

from __future__ import annotations

from caldaemon.providers.ics.document import Document


class KnownFile:
    """The last document of one file and the bytes it stands for."""

    def __init__(self) -> None:
        self._data: bytes | None = None
        self._document: Document | None = None

    def holds(self, data: bytes) -> bool:
        return self._document is not None and data == self._data

    def document(self, data: bytes) -> Document:
        """The document of ``data``: the one kept when the file still holds what it
        stands for (``data`` is then not scanned). A caller that changes the document
        calls :meth:`wrote` or :meth:`forget` afterwards."""
        if self._document is not None and self.holds(data):
            return self._document
        document = Document(data)
        self._data, self._document = data, document
        return document

    def wrote(self, data: bytes, document: Document) -> None:
        """``document`` was written to the file as ``data``. A document whose removed
        blocks pile up is dropped instead, so a daemon that runs for years keeps no more
        than the file (the next read scans it afresh, once)."""
        if document.removed > len(document.spans):
            self.forget()
            return
        document.changed = False
        self._data, self._document = data, document

    def forget(self) -> None:
        self._data, self._document = None, None
