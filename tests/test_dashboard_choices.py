"""A button the beneficiary pressed, on the dashboard's case page: the choice's label, not
the bare number the channel sent (Telegram and the web chat send the payload alone)."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient
from channels import settled
from test_dashboard import Visitor, login, office
from transcript import INTAKE_AR

from bot.server import Tawasul
from storage.repositories import CaseFileRepository, RequestRepository

__all__ = ["office"]  # the fixture, used by name

# The intake's steps answered by a button: the menu (a new request), the privacy notice
# (agreed) and the need.
PRESSED = {1, 2, 7}


class Presser(Visitor):
    """A web chat visitor who presses buttons: the payload sent alone, as the page does."""

    async def press(self, payload: str) -> dict[str, Any]:
        self.count += 1
        posted = await self.client.post(
            "/api/chat/messages",
            json={"text": payload, "id": f"m{self.count}", "payload": payload},
        )
        assert posted.status == 202, await posted.text()
        await settled(self.database, "web")
        polled = await self.client.get(f"/api/chat/messages?after={self.last}&wait=10")
        body: dict[str, Any] = await polled.json()
        self.last = body["last"]
        return body


async def choices_now(visitor: Presser) -> list[dict[str, str]]:
    """The choices of the last message the visitor was sent."""
    polled = await visitor.client.get("/api/chat/messages?after=0&wait=0")
    messages = (await polled.json())["messages"]
    return next(m["choices"] for m in reversed(messages) if m["choices"])


async def test_a_pressed_button_shows_its_label_on_the_case_page(
    office: tuple[Tawasul, TestClient[Any, Any]],
) -> None:
    tawasul, client = office
    visitor = Presser(client, tawasul.database)
    await visitor.open()
    labels, reply = [], ""
    for n, line in enumerate(INTAKE_AR):
        if n in PRESSED:
            first = (await choices_now(visitor))[0]
            labels.append(first["label"])
            await visitor.press(first["payload"])
        else:
            reply = await visitor.send(line)
    assert "REQ-000001" in reply
    assert len(set(labels)) == 3 and all(not label.isdigit() for label in labels)

    assert (await login(client, "mona")).status == 303
    page = await (await client.get("/staff/requests/REQ-000001")).text()
    shown = re.findall(r'<li class="event k-message_in">.*?</li>', page, re.S)
    texts = [re.search(r'<p class="text" dir="auto">(.*?)</p>', item, re.S) for item in shown]
    said = [t.group(1) for t in texts if t is not None]
    for label in labels:
        assert label in said, said
    assert not [text for text in said if text.isascii() and text.isdigit()], said

    # The export's timeline says it too (the stored message keeps what the channel sent).
    async with tawasul.database.session() as session:
        request = await RequestRepository(session).get_by_reference("REQ-000001")
        assert request is not None
        events = await CaseFileRepository(session).events(request)
    pressed = [e for e in events if e.kind == "message_in" and e.detail.get("payload")]
    assert [e.detail["choice"] for e in pressed] == labels
    assert all(e.text.isdigit() for e in pressed)
