"""What a ZNS answer means for the outbox (pure).

The send API answers HTTP 200 for failures too: only ``error == 0`` in the body is a success.
Codes from Zalo's ZNS error table (zalo.cloud/zns/guidelines/handle-error-code): -100 unknown
error ("try again later"), -108 phone invalid, -118 Zalo account does not exist, -119 account
cannot receive ZNS, -124 access token invalid, -144 the OA's daily quota used up. A code not
listed here is a failure of that message that a retry would not fix.
"""

from __future__ import annotations

import enum


class Verdict(enum.Enum):
    SENT = "sent"
    RETRY = "retry"  # later, with backoff: the server or the network had a problem
    REFRESH = "refresh"  # the access token: refresh it once, then send again
    QUOTA = "quota"  # nothing more today
    FAILED = "failed"  # this message never will be sent: marked, not retried


UNKNOWN_ERROR = -100
PHONE_INVALID = -108
NO_ZALO_ACCOUNT = -118
CANNOT_RECEIVE = -119  # the user refused ZNS, an inactive account, an old Zalo version
TOKEN_INVALID = -124
DAILY_QUOTA = -144

REASONS = {
    PHONE_INVALID: "số điện thoại không hợp lệ",
    NO_ZALO_ACCOUNT: "số này không có tài khoản Zalo",
    CANNOT_RECEIVE: "người dùng không nhận tin ZNS (từ chối hoặc tài khoản không hoạt động)",
    TOKEN_INVALID: "access token không hợp lệ",
    DAILY_QUOTA: "đã hết hạn mức gửi ZNS trong ngày",
    UNKNOWN_ERROR: "Zalo báo lỗi không xác định",
}


def verdict(error: int) -> Verdict:
    if error == 0:
        return Verdict.SENT
    if error == UNKNOWN_ERROR:
        return Verdict.RETRY
    if error == TOKEN_INVALID:
        return Verdict.REFRESH
    if error == DAILY_QUOTA:
        return Verdict.QUOTA
    return Verdict.FAILED


def reason(error: int, message: str = "") -> str:
    return REASONS.get(error) or f"Zalo trả mã lỗi {error}: {message}".rstrip(": ")
