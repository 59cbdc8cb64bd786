"""What ``ivr run`` starts when Zalo is configured: the sender task and, if asked, the webhook."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import structlog
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.config import Settings
from ivr.survey.zalo import webhook
from ivr.survey.zalo.client import ZnsClient
from ivr.survey.zalo.sender import Sender
from ivr.survey.zalo.tokens import TokenStore

log = structlog.get_logger("ivr.zalo")


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class ZaloSurvey:
    http: aiohttp.ClientSession
    sending: asyncio.Task[None]
    hook: web.AppRunner | None

    async def stop(self) -> None:
        self.sending.cancel()
        await asyncio.gather(self.sending, return_exceptions=True)
        if self.hook is not None:
            await self.hook.cleanup()
        await self.http.close()


async def start(
    settings: Settings, engine: AsyncEngine, clock: Callable[[], dt.datetime] = _utc_now
) -> ZaloSurvey:
    http = aiohttp.ClientSession()
    tokens = TokenStore(
        settings.zalo_token_path,
        settings.zalo_app_id,
        settings.zalo_secret_key,
        http,
        clock,
        settings.zalo_oauth_url,
    )
    if not settings.zalo_token_path.is_file():
        log.warning("zalo_token", message=f"chưa có tệp token Zalo {settings.zalo_token_path}")
    client = ZnsClient(http, tokens, settings.zalo_template_id, settings.zalo_api_url)
    sending = asyncio.create_task(Sender(engine, client, clock).run(), name="zalo-survey")
    return ZaloSurvey(http, sending, await _serve_hook(settings, engine))


async def _serve_hook(settings: Settings, engine: AsyncEngine) -> web.AppRunner | None:
    if not settings.zalo_webhook_address:
        return None
    if not settings.zalo_oa_secret_key:
        log.error("zalo_webhook", message="không mở webhook Zalo: thiếu IVR_ZALO_OA_SECRET_KEY")
        return None
    host, port = settings.zalo_webhook_address.rsplit(":", 1)
    runner = web.AppRunner(webhook.app(engine, settings.zalo_app_id, settings.zalo_oa_secret_key))
    await runner.setup()
    await web.TCPSite(runner, host, int(port)).start()
    log.info("zalo_webhook", address=settings.zalo_webhook_address, path=webhook.PATH)
    return runner
