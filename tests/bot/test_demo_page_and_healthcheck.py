"""Over real HTTP: the demo shop page at `/` (on by default, off with server.demo_page = false) and the
Dockerfile's health check."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import aiohttp
import pytest

from bot.settings import load_settings
from tests.conftest import CONFIG_DIR, ROOT
from tests.handoff.test_service import SECRET, serving


@pytest.mark.parametrize(("env", "shop"), [({}, True), ({"RELEVO_SERVER_DEMO_PAGE": "false"}, False)])
async def test_the_demo_page_is_served_only_when_on(redis_url: str, tmp_path: Path, env: dict[str, str],
                                                    shop: bool) -> None:  # fmt: skip
    settings = load_settings(CONFIG_DIR, env=env, server={"session_secret": SECRET},
                             store={"redis_url": redis_url, "data_dir": str(tmp_path)})  # fmt: skip
    async with serving(settings) as served, aiohttp.ClientSession() as http:
        async with http.get(served.url + "/") as r:
            body = await r.text()
            assert r.status == (200 if shop else 404)
            assert ("This is a demo shop page" in body) is shop
        for path in ("/widget.js", "/healthz"):  # what a real site uses stays
            async with http.get(served.url + path) as r:
                assert r.status == 200, path


def _healthcheck_code() -> str:
    """The Python that the Dockerfile's HEALTHCHECK runs."""
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    command = dockerfile.split("HEALTHCHECK", 1)[1].split('CMD python -c "', 1)[1]
    return command.split('"\n', 1)[0]


async def test_the_dockerfile_health_check_asks_the_port_the_container_serves_on(
    redis_url: str, tmp_path: Path, unused_tcp_port: int
) -> None:
    settings = load_settings(CONFIG_DIR, env={}, server={"session_secret": SECRET},
                             store={"redis_url": redis_url, "data_dir": str(tmp_path)})  # fmt: skip
    async with serving(settings) as served:
        port = served.url.rsplit(":", 1)[1]

        async def check(env_port: str) -> int:
            env = {k: v for k, v in os.environ.items() if k != "RELEVO_SERVER_PORT"} | {"RELEVO_SERVER_PORT": env_port}
            proc = await asyncio.create_subprocess_exec(sys.executable, "-c", _healthcheck_code(), env=env,
                                                        stderr=asyncio.subprocess.DEVNULL)  # fmt: skip
            return await asyncio.wait_for(proc.wait(), 30)

        assert await check(port) == 0
        assert await check(str(unused_tcp_port)) != 0  # nothing there: unhealthy
