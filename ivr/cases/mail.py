"""Sending the digest by e-mail: smtplib, run in a worker thread so no event loop waits on it."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import Sequence
from email.message import EmailMessage

from ivr.cases.rules import Smtp

TIMEOUT = 20.0


def message(smtp: Smtp, to: Sequence[str], subject: str, body: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = smtp.sender
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    msg.set_content(body)  # UTF-8, as Vietnamese needs
    return msg


def send_blocking(smtp: Smtp, msg: EmailMessage) -> None:
    with smtplib.SMTP(smtp.host, smtp.port, timeout=TIMEOUT) as client:
        if smtp.user:
            client.starttls()
            client.login(smtp.user, smtp.password)
        client.send_message(msg)


async def send(smtp: Smtp, msg: EmailMessage) -> None:
    await asyncio.to_thread(send_blocking, smtp, msg)
