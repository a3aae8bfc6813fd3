"""The FastAGI server: accept Asterisk's connections, authenticate, route by script, bound each call.

Every session ends the way the fixtures' recorder ended it: half-close, read until Asterisk's EOF
(it still sends `HANGUP`, agi_allow), close. Whatever goes wrong inside a handler (exception,
deadline) is logged with the call's uniqueid and control goes back to the dialplan, which then
acts on SCREEN_RESULT; `fail_screen_result` makes that failure outcome explicit (STYLE.md rule 6).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import ipaddress
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType, TracebackType

from ivr.agi.channel import AgiChannel
from ivr.agi.protocol import AgiEnv, AgiError, ChannelHungUp
from ivr.agi.variables import SCREEN_RESULT

log = logging.getLogger(__name__)

Handler = Callable[[AgiEnv, AgiChannel], Awaitable[None]]
SECRET_PARAM = "secret"
_SECRET_IN_URL = re.compile(r"(?<=[?&]secret=)[^&]*")
_IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _redact(env: AgiEnv) -> AgiEnv:
    """The env a handler sees: the shared secret removed, so it cannot end up in logs or the DB."""
    if SECRET_PARAM not in env.query:
        return env
    raw = {key: _SECRET_IN_URL.sub("REDACTED", value) for key, value in env.raw.items()}
    return dataclasses.replace(
        env,
        request=_SECRET_IN_URL.sub("REDACTED", env.request),
        network_script=_SECRET_IN_URL.sub("REDACTED", env.network_script),
        query=MappingProxyType({k: v for k, v in env.query.items() if k != SECRET_PARAM}),
        raw=MappingProxyType(raw),
    )


def _peer_address(peer: object) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not isinstance(peer, tuple) or not peer:
        return None
    try:
        address = ipaddress.ip_address(str(peer[0]).split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # a dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d
    return address


class AgiServer:
    """FastAGI over TCP with an explicit route table {script path: handler}; no globals."""

    def __init__(
        self,
        routes: Mapping[str, Handler],
        *,
        host: str = "127.0.0.1",
        port: int = 4573,
        session_deadline_s: float,
        allowed_sources: frozenset[str] | None = None,
        shared_secret: str | None = None,
        fail_screen_result: str | None = None,
        command_timeout_s: float = 30.0,
        env_timeout_s: float = 5.0,
        cleanup_timeout_s: float = 1.0,
        drain_timeout_s: float = 5.0,
        backlog: int = 1024,
    ) -> None:
        self._routes = MappingProxyType({path.strip("/"): handler for path, handler in routes.items()})
        self._host = host
        self._port = port
        self._session_deadline_s = session_deadline_s
        # Entries are addresses or networks ("10.0.0.0/8"); parsed once so a typo fails at startup.
        self._allowed: tuple[_IpNetwork, ...] | None = (
            tuple(ipaddress.ip_network(src, strict=False) for src in allowed_sources)
            if allowed_sources is not None
            else None
        )
        if shared_secret is not None and not shared_secret:
            raise ValueError("shared_secret must not be empty")
        self._secret = shared_secret.encode("utf-8") if shared_secret else None
        self._fail_screen_result = fail_screen_result
        self._command_timeout_s = command_timeout_s
        self._env_timeout_s = env_timeout_s
        self._cleanup_timeout_s = cleanup_timeout_s
        self._drain_timeout_s = drain_timeout_s
        self._backlog = backlog
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with port=0)."""
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def active_sessions(self) -> int:
        return len(self._sessions)

    async def start(self) -> None:
        """Bind and start accepting connections."""
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._on_connect, self._host, self._port, backlog=self._backlog
        )
        log.info("agi: listening on %s:%d, routes %s", self._host, self.port, sorted(self._routes))

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop accepting, give running calls `grace_s` to finish, then cancel the rest."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        sessions = set(self._sessions)
        if sessions:
            _, pending = await asyncio.wait(sessions, timeout=grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await server.wait_closed()

    async def __aenter__(self) -> AgiServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------ one call

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._sessions.add(task)
        try:
            await self._session(reader, writer)
        finally:
            if task is not None:
                self._sessions.discard(task)

    def _source_allowed(self, peer: object) -> bool:
        if self._allowed is None:
            return True
        address = _peer_address(peer)
        return address is not None and any(address in network for network in self._allowed)

    def _authorised(self, env: AgiEnv) -> bool:
        if self._secret is None:
            return True
        given = env.query.get(SECRET_PARAM)
        # compare_digest: the time taken must not reveal how much of the secret matched.
        return given is not None and hmac.compare_digest(given.encode("utf-8"), self._secret)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        if not self._source_allowed(peer):
            log.warning("agi: connection from %r refused: not an allowed source", peer)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return
        channel = AgiChannel(reader, writer, command_timeout_s=self._command_timeout_s)
        failed = False
        try:
            async with asyncio.timeout(self._session_deadline_s):
                env = await channel.read_env(self._env_timeout_s)
                handler = self._route(env, peer)
                if handler is not None:
                    await handler(_redact(env), channel)
        except TimeoutError:
            failed = True
            if channel.env is None:
                log.warning("agi: no complete env from %r in time; closing", peer)
            else:
                log.warning("agi %s: deadline of %.3fs exceeded", channel.uniqueid, self._session_deadline_s)
        except ChannelHungUp as exc:
            failed = True
            log.info("agi %s: channel hung up during handler: %s", channel.uniqueid, exc)
        except AgiError as exc:
            failed = True
            log.warning("agi %s: AGI error in handler: %r", channel.uniqueid, exc)
        except Exception:
            failed = True
            log.exception("agi %s: handler failed", channel.uniqueid)
        finally:
            await self._finish(channel, failed=failed)

    def _route(self, env: AgiEnv, peer: object) -> Handler | None:
        if env.suspicious:
            log.warning("agi %s: suspicious env: %r", env.uniqueid, env.suspicious_reasons)
        if not self._authorised(env):
            log.warning("agi %s: refused from %r: missing or wrong secret", env.uniqueid, peer)
            return None
        handler = self._routes.get(env.script)
        if handler is None:
            log.warning("agi %s: no route for script %r", env.uniqueid, env.script)
        return handler

    async def _finish(self, channel: AgiChannel, *, failed: bool) -> None:
        """Return control to the dialplan, with the fail result set if the handler did not get to it."""
        if (
            failed
            and self._fail_screen_result is not None
            and channel.env is not None
            and SCREEN_RESULT not in channel.variables_set
        ):
            try:
                async with asyncio.timeout(self._cleanup_timeout_s):
                    await channel.set_variable(SCREEN_RESULT, self._fail_screen_result)
                log.info(
                    "agi %s: %s=%s after failure", channel.uniqueid, SCREEN_RESULT, self._fail_screen_result
                )
            except (AgiError, TimeoutError) as exc:
                log.warning(
                    "agi %s: could not set %s after failure: %r", channel.uniqueid, SCREEN_RESULT, exc
                )
        await channel.close(drain_timeout_s=self._drain_timeout_s)
