"""python-telegram-bot's calls to the Bot API, made with aiohttp instead of httpx.

PTB lets the HTTP client be swapped (``BaseRequest``). The server already runs on
aiohttp; its client costs less per call than httpx's (whose connection pool does work
in proportion to the requests waiting in it), and the outbox sends many at once. The
Bot API and PTB's behaviour are unchanged: status codes are turned into PTB's errors by
``BaseRequest`` itself, time-outs and network failures here into ``TimedOut`` and
``NetworkError``, as PTB's own client does.
"""

from __future__ import annotations

import aiohttp
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

# Waits for the Bot API, in seconds: connecting, and each read of an answer.
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 20.0
# Calls at once to the Bot API (each outbox lane sends to several chats together).
CONNECTIONS = 100

_UNSET = type(BaseRequest.DEFAULT_NONE)


def _seconds(value: object, default: float) -> float | None:
    if isinstance(value, _UNSET):
        return default
    return value if isinstance(value, float | int) else None


class AiohttpRequest(BaseRequest):
    """A ``BaseRequest`` on one ``aiohttp.ClientSession`` (opened by ``initialize``)."""

    def __init__(self, connections: int = CONNECTIONS, read_timeout: float = READ_TIMEOUT) -> None:
        self._connections = connections
        self._read_timeout = read_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._connections)
            self._session = aiohttp.ClientSession(connector=connector)

    async def shutdown(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: object = BaseRequest.DEFAULT_NONE,
        write_timeout: object = BaseRequest.DEFAULT_NONE,
        connect_timeout: object = BaseRequest.DEFAULT_NONE,
        pool_timeout: object = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None:
            raise RuntimeError("AiohttpRequest is not initialized")
        timeout = aiohttp.ClientTimeout(
            connect=_seconds(pool_timeout, CONNECT_TIMEOUT),
            sock_connect=_seconds(connect_timeout, CONNECT_TIMEOUT),
            sock_read=_seconds(read_timeout, self._read_timeout),
        )
        data: aiohttp.FormData | dict[str, str] | None = None
        if request_data is not None:
            files = request_data.multipart_data
            data = request_data.json_parameters
            if files:
                form = aiohttp.FormData()
                for name, value in data.items():
                    form.add_field(name, value)
                for name, (filename, content, mimetype) in files.items():
                    form.add_field(name, content, filename=filename, content_type=mimetype)
                data = form
        try:
            async with self._session.request(
                method, url, data=data, timeout=timeout, headers={"User-Agent": self.USER_AGENT}
            ) as response:
                return response.status, await response.read()
        except TimeoutError as error:
            raise TimedOut from error
        except aiohttp.ClientError as error:
            raise NetworkError(f"aiohttp.{type(error).__name__}: {error}") from error
