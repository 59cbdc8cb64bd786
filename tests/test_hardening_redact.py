"""No URL's password in a log line (issue 14 row 23): :func:`ivr.redact.redact`."""

from __future__ import annotations

import pytest

from ivr.redact import redact


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://ivr:pw@127.0.0.1:8088/ari", "http://ivr:***@127.0.0.1:8088/ari"),
        ("postgresql+psycopg://ivr:p%40ss@db:5432/ivr", "postgresql+psycopg://ivr:***@db:5432/ivr"),
        ("postgresql://ivr:a@b@db/ivr", "postgresql://ivr:***@db/ivr"),  # an unquoted @
        ("http://:pw@host/", "http://:***@host/"),
        ("http://127.0.0.1:8088/ari", "http://127.0.0.1:8088/ari"),
        ("sqlite:////var/lib/ivr/calls.db", "sqlite:////var/lib/ivr/calls.db"),
        ("http://user@host/", "http://user@host/"),
        ("lỗi: http://u:x@h/a và postgresql://v:y@d/b", "lỗi: http://u:***@h/a và postgresql://v:***@d/b"),
    ],
)  # fmt: skip
def test_every_urls_password_is_masked(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_the_settings_logged_at_start_hold_no_url_password() -> None:
    from ivr.config import Settings

    settings = Settings(
        ari_url="http://ivr:pw-ari@127.0.0.1:8088/ari",
        database_url="postgresql+psycopg://ivr:pw-db@127.0.0.1/ivr",
    )
    shown = repr(settings.redacted())
    assert "pw-ari" not in shown
    assert "pw-db" not in shown
