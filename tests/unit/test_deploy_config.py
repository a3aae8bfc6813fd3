"""The compose file stays coherent: every process has a service, and each app service runs a real CLI command.

`docker compose config` is not available on the CI machine, so this checks what it would: the YAML
parses, the anchors resolve, and the commands exist in our Typer app.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from core.cli import app

COMPOSE = Path(__file__).resolve().parents[2] / "docker" / "compose.yml"


def test_compose_has_every_process_with_healthchecks() -> None:
    spec = yaml.safe_load(COMPOSE.read_text())
    services = spec["services"]
    assert {"postgres", "redis", "asterisk", "api", "dialer", "agi", "worker", "beat"} <= set(services)
    for name in ("postgres", "redis", "asterisk", "api", "dialer", "agi", "worker"):
        assert "healthcheck" in services[name], name
    commands = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
    for name in ("api", "dialer", "agi", "worker", "beat"):
        command = services[name]["command"]
        assert command[0] == "callcenter" and command[1] in commands, (name, command)
    # AGI is published on the host's loopback only: it carries no encryption (DESIGN, STYLE §6).
    assert services["agi"]["ports"] == ["127.0.0.1:4573:4573"]
    assert "monitor" in spec["volumes"]
