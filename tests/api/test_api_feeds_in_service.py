"""Threat-intel feeds polled by ``mamori serve`` itself: a plain-text IOC list becomes indicators in
the service's intel store without anyone running ``mamori intel feeds``."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from mamori.config import Settings
from mamori.intel.store import IntelStore
from mamori.service.runtime import Service


def test_service_polls_configured_feeds_into_the_intel_store(tmp_path: Path) -> None:
    iocs = tmp_path / "iocs.txt"
    iocs.write_text("# bad infrastructure\n203.0.113.50\nevil.example.net\n")
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(f"feeds:\n  - name: local-list\n    kind: text\n    location: {iocs}\n    interval: 60\n")
    settings = Settings(data_dir=tmp_path / "data", syslog_udp_port=-1, syslog_tcp_port=-1, intel_feeds=feeds)
    service = Service(settings)

    async def run() -> None:
        await service.start()
        try:
            store = IntelStore.open(settings.data_dir / "intel.db")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and store.indicator_frame().height < 2:
                await asyncio.sleep(0.2)
            assert store.indicator_frame().height == 2
        finally:
            await service.stop()

    asyncio.run(run())
