"""What a ZNS answer means for the outbox (pure).

The send API answers HTTP 200 for failures too: only ``error == 0`` in the body is a success.

Sources, and how far each code is confirmed (checked November 2026 with the search tool; the
live pages were not reachable from here):

- Zalo's own table, https://zalo.cloud/zns/guidelines/handle-error-code ("Cách xử lý mã lỗi"):
  0 success; -100 "Unknown error ... vui lòng thử lại sau" (retry later); -108 "Phone number
  invalid" (84xxxx, 0xxxx accepted). Confirmed there.
- The same table's later rows, as a reseller copies them without the numbers
  (https://helpdesk.getfly.vn/web-version/interactive-blocks/questions-about-zns): "Zalo account
  not existed", "Account can not receive ZNS", "User is inactive, or reject the message, or using
  an outdated Zalo version" (refused by the user), "Out of quota" = the ZNS account's balance is
  too low. Their numbers could not be read in the stored copies.
- -118 with the message "Zalo account not existed", and -124 answered for an expired access token
  (the caller refreshes it), as public integrations handle them; not confirmed from Zalo's page.
- -119 (account cannot receive ZNS) and -144 (daily quota) are NOT confirmed anywhere we could
  read. So :func:`verdict` also reads Zalo's ``message``: any message about the quota pauses the
  sender until the next day (a balance or a daily limit: a retry today would fail the same way),
  and a message about an invalid or expired access token refreshes it, whatever the number.

A code not listed here is a failure of that message that a retry would not fix.
"""

from __future__ import annotations

import enum


class Verdict(enum.Enum):
    SENT = "sent"
    RETRY = "retry"  # later, with backoff: the server or the network had a problem
    REFRESH = "refresh"  # the access token: refresh it once, then send again
    QUOTA = "quota"  # nothing more today
    FAILED = "failed"  # this message never will be sent: marked, not retried


UNKNOWN_ERROR = -100  # confirmed
PHONE_INVALID = -108  # confirmed
NO_ZALO_ACCOUNT = -118  # as public integrations see it
CANNOT_RECEIVE = -119  # unconfirmed number: inactive account, ZNS refused, old Zalo version
TOKEN_INVALID = -124  # as public integrations see it
DAILY_QUOTA = -144  # unconfirmed number; the message is read too (see quota_message)

REASONS = {
    PHONE_INVALID: "số điện thoại không hợp lệ",
    NO_ZALO_ACCOUNT: "số này không có tài khoản Zalo",
    CANNOT_RECEIVE: "người dùng không nhận tin ZNS (từ chối hoặc tài khoản không hoạt động)",
    TOKEN_INVALID: "access token không hợp lệ",
    DAILY_QUOTA: "đã hết hạn mức gửi ZNS trong ngày",
    UNKNOWN_ERROR: "Zalo báo lỗi không xác định",
}


def quota_message(message: str) -> bool:
    """Zalo's words for a quota or balance used up ("Out of quota", "... exceeded ... quota")."""
    return "quota" in message.lower()


def token_message(message: str) -> bool:
    """Zalo's words for an access token it no longer takes."""
    text = message.lower().replace("_", " ")
    return "access token" in text and any(w in text for w in ("invalid", "expired", "removed"))


def refused_message(message: str) -> bool:
    """Zalo's words for a user who does not take ZNS (refused, inactive, old app)."""
    text = message.lower()
    return "reject" in text or "inactive" in text or "can not receive" in text


def verdict(error: int, message: str = "") -> Verdict:
    if error == 0:
        return Verdict.SENT
    if error == UNKNOWN_ERROR:
        return Verdict.RETRY
    if error == TOKEN_INVALID or token_message(message):
        return Verdict.REFRESH
    if error == DAILY_QUOTA or quota_message(message):
        return Verdict.QUOTA
    return Verdict.FAILED


def reason(error: int, message: str = "") -> str:
    if error in REASONS:
        return REASONS[error]
    if quota_message(message):
        return f"hết hạn mức hoặc số dư ZNS (mã {error}: {message})"
    if refused_message(message):
        return f"người dùng không nhận tin ZNS (mã {error}: {message})"
    return f"Zalo trả mã lỗi {error}: {message}".rstrip(": ")
