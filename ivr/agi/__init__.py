"""FastAGI adapter: the pure wire format (protocol), one call's commands (channel), the server."""

from ivr.agi.channel import AgiChannel
from ivr.agi.protocol import (
    AgiCommandError,
    AgiCommandTimeout,
    AgiConnectionClosed,
    AgiEnv,
    AgiError,
    AgiProtocolError,
    AgiReply,
    ChannelHungUp,
    parse_env,
    parse_reply,
)
from ivr.agi.server import AgiServer, Handler

__all__ = [
    "AgiChannel",
    "AgiCommandError",
    "AgiCommandTimeout",
    "AgiConnectionClosed",
    "AgiEnv",
    "AgiError",
    "AgiProtocolError",
    "AgiReply",
    "AgiServer",
    "ChannelHungUp",
    "Handler",
    "parse_env",
    "parse_reply",
]
