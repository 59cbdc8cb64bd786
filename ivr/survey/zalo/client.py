"""One ZNS send over aiohttp: POST message/template, the answer read as the docs say.

A failure is told by the body (``error`` not 0) as well as by the HTTP status; what the outbox
does about it is :func:`ivr.survey.zalo.codes.verdict`'s. An invalid access token is refreshed
once and the message sent again; still invalid: TokenError (the operator has to act).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp

from ivr.survey.zalo.codes import Verdict, reason, verdict
from ivr.survey.zalo.tokens import TokenError, TokenStore

SEND_URL = "https://business.openapi.zalo.me/message/template"


@dataclass(frozen=True, slots=True)
class Outcome:
    verdict: Verdict
    code: int | None = None
    reason: str = ""
    msg_id: str = ""


class ZnsClient:
    def __init__(
        self,
        http: aiohttp.ClientSession,
        tokens: TokenStore,
        template_id: str,
        url: str = SEND_URL,
        timeout: float = 15.0,
    ) -> None:
        self._http, self._tokens, self._template, self._url = http, tokens, template_id, url
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def send(self, phone: str, data: Mapping[str, str], tracking_id: str) -> Outcome:
        body = {
            "phone": phone,
            "template_id": self._template,
            "template_data": dict(data),
            "tracking_id": tracking_id,
        }
        token = await self._tokens.access_token()
        out = await self._post(token, body)
        if out.verdict is Verdict.REFRESH:
            out = await self._post(await self._tokens.refresh(token), body)
            if out.verdict is Verdict.REFRESH:
                raise TokenError("access token Zalo vẫn không hợp lệ sau khi làm mới")
        return out

    async def _post(self, token: str, body: Mapping[str, object]) -> Outcome:
        try:
            async with self._http.post(
                self._url, json=body, headers={"access_token": token}, timeout=self._timeout
            ) as r:
                if r.status >= 500 or r.status == 429:
                    return Outcome(Verdict.RETRY, reason=f"HTTP {r.status}")
                if r.status >= 400:
                    return Outcome(Verdict.FAILED, reason=f"HTTP {r.status}")
                answer = await r.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError) as e:
            return Outcome(Verdict.RETRY, reason=f"{type(e).__name__}: {e}".rstrip(": "))
        if not isinstance(answer, dict) or not isinstance(answer.get("error"), int):
            return Outcome(Verdict.RETRY, reason="câu trả lời của Zalo không đúng dạng")
        code = answer["error"]
        data = answer.get("data")
        msg_id = str(data.get("msg_id", "")) if isinstance(data, dict) else ""
        message = str(answer.get("message", ""))
        said = "" if code == 0 else reason(code, message)
        return Outcome(verdict(code, message), code, said, msg_id)
