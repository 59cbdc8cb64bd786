"""The console shows callers' text (number, name, the phone Asterisk named) with control and
bidi characters as visible escapes: a U+202E cannot reorder a row, an ESC is not passed on."""

from __future__ import annotations

import datetime as dt

from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncSession

from .test_web import T0, Site, call, client, signed_in, site  # noqa: F401 (fixtures)

HOSTILE = "Lan\u202e\x1b[2J\x07"
RAW = ("\u202e", "\x1b", "\x07")


async def test_calls_and_a_call_show_caller_text_escaped(
    site: Site,  # noqa: F811
    client: TestClient[object, object],  # noqa: F811
) -> None:
    async with AsyncSession(site.engine) as s, s.begin():
        s.add(
            call(
                "c-bidi",
                T0 + dt.timedelta(minutes=5),
                caller_name=HOSTILE,
                caller_number="0912\u202e345",
                endpoint="PJSIP/x\x1b[2J",
            )
        )
    await signed_in(client, "admin")
    for path in ("/calls", "/calls/detail?id=c-bidi"):
        html = await (await client.get(path)).text()
        assert not any(c in html for c in RAW), path
        assert "Lan\\u202e\\x1b[2J\\x07" in html, path
        assert "PJSIP/x\\x1b[2J" in html, path
        assert "0912\\u202e345" in html, path
