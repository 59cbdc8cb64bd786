"""Phản ánh in the console: a clerk opens a case from a call or a voicemail of their branch, moves
it through the status machine (a refused step is said, not done), others' cases are out of
sight, supervisors read citizens masked and cannot open, and the list puts overdue cases first."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ivr.cases.deadlines import deadlines
from ivr.cases.owners import owner_of_branch
from ivr.cases.rules import load_rules
from ivr.cases.store import NewCase, open_case
from ivr.web.app import make_app
from ivr.web.routing_desk import RoutingDesk
from tests.test_web import ROOT, Site, make_site, signed_in, token_of, web_config

Client = TestClient[object, object]


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    s = await make_site(tmp_path)
    yield s
    await s.engine.dispose()


@pytest.fixture
def desk(site: Site) -> RoutingDesk:
    d = RoutingDesk(site.routing_file, ROOT / "prompts" / "manifest.yaml")
    assert d.reload()
    return d


@pytest.fixture
async def client(site: Site, desk: RoutingDesk) -> AsyncIterator[Client]:
    async with TestClient(TestServer(make_app(site.engine, web_config(site), desk))) as c:
        yield c


async def open_from(c: Client, query: str, subject: str = "Chậm cấp sổ đỏ") -> str:
    """Open a case through the form; the new case's number."""
    form = await c.get(f"/cases/new?{query}")
    assert form.status == 200, await form.text()
    html = await form.text()
    r = await c.post(
        f"/cases/new?{query}",
        data={
            "csrf": token_of(html),
            "subject": subject,
            "category": "thủ tục hành chính",
            "branch": re.search(r'name="branch" value="([^"]*)"', html).group(1),  # type: ignore[union-attr]
            "unit": re.search(r'name="unit" value="([^"]*)"', html).group(1),  # type: ignore[union-attr]
            "name": "Nguyễn Văn An",
            "content": "Nộp hồ sơ từ tháng 8, chưa có kết quả.",
        },
        allow_redirects=False,
    )
    assert r.status == 302, await r.text()
    m = re.fullmatch(r"/cases/detail\?number=(PAKN-\d{4}-\d{4})", r.headers["Location"])
    assert m, r.headers["Location"]
    return m.group(1)


async def test_clerk_opens_a_case_from_a_call_and_moves_it(client: Client) -> None:
    await signed_in(client, "sotaichinh")
    call_page = await (await client.get("/calls/detail?id=c-6")).text()
    assert 'href="/cases/new?call=c-6"' in call_page
    number = await open_from(client, "call=c-6")
    html = await (await client.get(f"/cases/detail?number={number}")).text()
    assert "Chậm cấp sổ đỏ" in html
    assert "Nguyễn Văn An" in html  # the owner's clerk calls the citizen back: not masked
    assert "0987654321" in html  # the call's number
    assert 'href="/calls/detail?id=c-6"' in html
    timeline = html[html.index('id="case-timeline"') :]
    assert "sotaichinh" in timeline
    assert "tiếp nhận" in timeline
    token = token_of(html)
    # a step the machine refuses: said on the page, nothing changed
    r = await client.post(
        "/cases/change", data={"csrf": token, "number": number, "status": "closed"}
    )
    assert r.status == 200
    page = await r.text()
    assert "không chuyển được từ «tiếp nhận» sang «đóng»" in page
    assert "tiếp nhận → " not in page
    r = await client.post(
        "/cases/change",
        data={"csrf": token, "number": number, "status": "forwarded", "note": "gửi phòng đất đai"},
    )
    page = await r.text()
    assert "tiếp nhận → chuyển xử lý" in page
    assert "gửi phòng đất đai" in page
    r = await client.post(
        "/cases/change", data={"csrf": token, "number": number, "assignee": "chị Hoa"}
    )
    assert "giao cho chị Hoa" in await r.text()
    # without the form's token nothing happens
    bare = await client.post("/cases/change", data={"number": number, "status": "verifying"})
    assert bare.status == 403


async def test_a_case_from_a_voicemail(client: Client, site: Site) -> None:
    await signed_in(client, "sotaichinh")
    inbox = await (await client.get("/voicemails")).text()
    assert f'href="/cases/new?voicemail={site.vm_mine}"' in inbox
    number = await open_from(client, f"voicemail={site.vm_mine}", "Hỏi về thuế đất")
    html = await (await client.get(f"/cases/detail?number={number}")).text()
    assert "qua lời nhắn" in html
    assert f'href="/voicemails#vm-{site.vm_mine}"' in html


async def test_who_sees_and_who_may_open(client: Client) -> None:
    await signed_in(client, "sotaichinh")
    number = await open_from(client, "call=c-6")
    client.session.cookie_jar.clear()
    await signed_in(client, "sonoivu")  # unit 1001: not this case's
    assert (await client.get(f"/cases/detail?number={number}")).status == 403
    assert number not in await (await client.get("/cases?show=all")).text()
    assert (await client.get("/cases/new?call=c-6")).status == 403  # not their call either
    client.session.cookie_jar.clear()
    await signed_in(client, "giamsat")
    html = await (await client.get(f"/cases/detail?number={number}")).text()
    assert "N. V. A." in html  # supervisors follow deadlines, not people
    assert "Nguyễn Văn An" not in html
    assert "0987***321" in html
    assert 'name="status"' not in html  # and do not act
    assert "/cases/new" not in await (await client.get("/calls/detail?id=c-6")).text()
    assert (await client.get("/cases/new?call=c-6")).status == 403
    token = token_of(await (await client.get("/calls")).text())
    r = await client.post(
        "/cases/new?call=c-6",
        data={"csrf": token, "subject": "x", "category": "khác", "branch": "6", "unit": ""},
    )
    assert r.status == 403
    # a clerk of unit 1001 may not open one for branch 6 from their own call either
    client.session.cookie_jar.clear()
    await signed_in(client, "sonoivu")
    token = token_of(await (await client.get("/calls")).text())
    r = await client.post(
        "/cases/new?call=c-unit",
        data={"csrf": token, "subject": "x", "category": "khác", "branch": "6", "unit": ""},
    )
    assert r.status == 400
    assert "không được mở hồ sơ cho Sở Tài chính" in await r.text()


async def test_overdue_first_and_the_filters(client: Client, site: Site, desk: RoutingDesk) -> None:
    routing = desk.routing()
    assert routing is not None
    rules = load_rules(None)
    today = dt.datetime.now(dt.UTC)
    owner = owner_of_branch(routing, "6", today.date())
    for subject, received in (
        ("Hồ sơ cũ quá hạn", today - dt.timedelta(days=40)),
        ("Hồ sơ mới trong hạn", today),
    ):
        new = NewCase(received, "hotline", subject, rules.categories[0], owner)
        await open_case(site.engine, routing, new, deadlines(routing, rules, received), "admin")
    await signed_in(client, "sotaichinh")
    html = await (await client.get("/cases")).text()
    assert html.index("Hồ sơ cũ quá hạn") < html.index("Hồ sơ mới trong hạn")
    assert re.search(r'class="case standing-overdue"[^>]*>.*?Hồ sơ cũ quá hạn', html, re.S)
    overdue = await (await client.get("/cases?show=overdue")).text()
    assert "Hồ sơ cũ quá hạn" in overdue
    assert "Hồ sơ mới trong hạn" not in overdue
    assert (await client.get("/cases?show=sai")).status == 400
