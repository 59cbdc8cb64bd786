"""Answers coming back from Zalo: the OA's webhook, its signature checked, stored with the call.

Zalo signs each event in the ``X-ZEvent-Signature`` header: the SHA-256 (hex) of the app id, the
raw body, the body's ``timestamp`` and the OA secret key (not the app's), concatenated in that
order. Confirmed, as a description of Zalo's OA webhook docs, at
https://hainh.me/zalo-api-php-webhook-callback-official-account.html (and the same formula in
public integrations); Zalo's own page was not readable here. Whether the header carries a
``mac=`` prefix is NOT confirmed (public integrations strip it when present), so
:func:`verified` takes the digest with or without it, in either letter case. A rating from the survey template (event ``user_feedback``) becomes a survey
answer with source ``zalo`` for the call whose key is its ``tracking_id``; the same rating
delivered again is stored once. Unknown events are acknowledged and ignored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from typing import Any

import structlog
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from ivr.survey.store import Answer, BadAnswers, check_score, record_answer
from models import SurveyAnswer

log = structlog.get_logger("ivr.zalo")
PATH = "/zalo/webhook"
HEADER = "X-ZEvent-Signature"


def signature(app_id: str, body: bytes, timestamp: str, oa_secret: str) -> str:
    data = app_id.encode() + body + timestamp.encode() + oa_secret.encode()
    return "mac=" + hashlib.sha256(data).hexdigest()


def verified(given: str, app_id: str, body: bytes, event: dict[str, Any], oa_secret: str) -> bool:
    expected = signature(app_id, body, str(event.get("timestamp", "")), oa_secret)
    digest = given.strip()
    if digest[:4].lower() == "mac=":
        digest = digest[4:].strip()
    return hmac.compare_digest(digest.lower().encode(), expected.removeprefix("mac=").encode())


def feedback(event: dict[str, Any]) -> Answer | None:
    """The answer a ``user_feedback`` event carries (None: another event); BadAnswers if bad."""
    if event.get("event_name") != "user_feedback":
        return None
    msg = event.get("message")
    if not isinstance(msg, dict) or not str(msg.get("tracking_id") or "").strip():
        raise BadAnswers("sự kiện user_feedback thiếu tracking_id")
    score = check_score(msg.get("rate"))
    millis = msg.get("submit_time") or event.get("timestamp")
    try:
        at = dt.datetime.fromtimestamp(int(str(millis)) / 1000, dt.UTC)
    except (TypeError, ValueError, OverflowError):
        raise BadAnswers(f"thời điểm '{millis}' không hợp lệ") from None
    tid = str(msg["tracking_id"]).strip()
    return Answer(score, at, call_id=tid, external_id=tid, source="zalo")


async def store_once(engine: AsyncEngine, answer: Answer) -> bool:
    async with AsyncSession(engine) as s:
        known = await s.scalar(
            select(SurveyAnswer.id).where(SurveyAnswer.external_id == answer.external_id)
        )
    if known is not None:
        return False
    try:
        await record_answer(engine, answer)
    except IntegrityError:  # the same event, delivered twice at once
        return False
    return True


def app(engine: AsyncEngine, app_id: str, oa_secret: str) -> web.Application:
    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            event = json.loads(body)
            if not isinstance(event, dict):
                raise ValueError("not an object")
        except ValueError:
            return web.json_response({"error": "body is not a JSON object"}, status=400)
        if not verified(request.headers.get(HEADER, ""), app_id, body, event, oa_secret):
            log.warning("zalo_webhook_signature", message="webhook Zalo sai chữ ký, bỏ qua")
            return web.json_response({"error": "bad signature"}, status=401)
        try:
            answer = feedback(event)
        except BadAnswers as e:
            log.warning("zalo_webhook_bad", message=f"đánh giá Zalo không dùng được: {e}")
            return web.json_response({"error": str(e)}, status=400)
        if answer is not None:
            await store_once(engine, answer)
        return web.json_response({"error": 0})

    application = web.Application(client_max_size=256 * 1024)
    application.router.add_post(PATH, receive)
    return application
