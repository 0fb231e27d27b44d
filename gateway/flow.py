"""Write flow control shared by both sides of the proxy: asyncio calls `pause_writing` when a
transport's buffer is full and `resume_writing` when it drained; `drain()` waits for that."""

import asyncio

__all__ = ["WriteFlow"]


class WriteFlow:
    """Mixin for an asyncio.Protocol; call `release_writers()` from `connection_lost`."""

    _writable: asyncio.Future | None = None

    def pause_writing(self) -> None:
        self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        self.release_writers()
        self._writable = None

    def release_writers(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    async def drain(self) -> None:
        if self._writable is not None:
            await self._writable
