"""Photos and PDFs through the website chat, checked by their bytes; and no channel that
cannot bring files is ever asked for them."""

from __future__ import annotations

import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from channels import WebVisitor, count, settled
from sqlalchemy import select
from test_webchat_browser import CHROMIUM, CHROMIUM_ARGS, playwright_api
from transcript import INTAKE_AR, Transcript

import flows
from bot.channels import capabilities_of, specs
from bot.config import Settings
from bot.media import MediaStore
from bot.server import Tawasul
from handlers.webchat import MAX_FILE_BYTES, file_type
from storage.db import Database
from storage.models import Message, StoredMedia

FILES = "/api/chat/files"


def real_png() -> bytes:
    """A 2x2 PNG any viewer opens."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def real_pdf() -> bytes:
    """A one-page PDF with its cross-reference table, as a PDF reader wants it."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


# A web page saved as "lease.pdf": the name and the browser's type say PDF, the bytes not.
FAKE_PDF = b"<!doctype html><title>lease</title>" + b" " * 500


class FileVisitor(WebVisitor):
    async def send_file(
        self, content: bytes, name: str, content_type: str = "application/octet-stream"
    ) -> tuple[int, str]:
        """Post one file; its status and the bot's replies (empty when refused)."""
        self.count += 1
        posted = await self.client.post(
            FILES,
            params={"id": f"f{self.count}", "name": name},
            data=content,
            headers={"Content-Type": content_type},
        )
        if posted.status != 202:
            return posted.status, ""
        await settled(self.database, "web")
        polled = await self.client.get(f"/api/chat/messages?after={self.last}&wait=10")
        body = await polled.json()
        self.last = body["last"]
        return posted.status, "\n\n".join(m["text"] for m in body["messages"])


@pytest.fixture
async def visitor(database: Database, tmp_path: Path) -> AsyncIterator[FileVisitor]:
    tawasul = Tawasul(Settings(server={"media_dir": str(tmp_path / "media")}), database)
    client: TestClient[Any, Any] = TestClient(TestServer(tawasul.app(), host="127.0.0.1"))
    await client.start_server()
    web = FileVisitor(client, database)
    await web.open()
    try:
        yield web
    finally:
        await client.close()


async def at_documents(web: FileVisitor) -> None:
    for line in INTAKE_AR[:8]:
        await web.send(line)
    asked = await web.send(INTAKE_AR[8])  # the description; then the documents
    assert "أرسل صور المستندات" in asked and "لا تستقبل الملفات" not in asked


async def test_a_photo_and_a_pdf_reach_the_request(
    visitor: FileVisitor, database: Database, tmp_path: Path
) -> None:
    await at_documents(visitor)
    status, reply = await visitor.send_file(real_png(), "بطاقة.png", "image/png")
    assert status == 202 and "استلمنا ١ من" in reply, reply
    # The browser's word is not taken: the bytes say PDF.
    status, reply = await visitor.send_file(real_pdf(), "عقد الإيجار.pdf", "text/plain")
    assert status == 202 and "استلمنا ٢ من" in reply, reply
    async with database.session() as session:
        kept = (await session.scalars(select(StoredMedia).order_by(StoredMedia.id))).all()
    assert [k.content_type for k in kept] == ["image/png", "application/pdf"]
    media = MediaStore(tmp_path / "media", database)
    assert [media.read(k.reference) for k in kept] == [real_png(), real_pdf()]
    assert "المستندات: ٢" in await visitor.send("تم")


async def test_a_fake_pdf_and_an_oversize_file_are_refused_and_nothing_kept(
    visitor: FileVisitor, database: Database
) -> None:
    await at_documents(visitor)
    messages = await count(database, Message)
    assert await visitor.send_file(FAKE_PDF, "lease.pdf", "application/pdf") == (415, "")
    too_big = b"%PDF-1.4\n" + b"0" * MAX_FILE_BYTES
    assert await visitor.send_file(too_big, "big.pdf", "application/pdf") == (413, "")
    assert await visitor.send_file(b"", "empty.pdf") == (415, "")
    assert await count(database, StoredMedia) == 0
    assert await count(database, Message) == messages  # not even logged
    # The conversation is where it was: a real file is still taken.
    status, reply = await visitor.send_file(real_pdf(), "lease.pdf")
    assert status == 202 and "استلمنا ١ من" in reply


async def test_a_file_at_the_menu_is_not_kept(visitor: FileVisitor, database: Database) -> None:
    await visitor.send("السلام عليكم")
    status, _reply = await visitor.send_file(real_png(), "x.png")
    assert status == 202
    assert await count(database, StoredMedia) == 0


async def test_a_file_from_another_site_is_refused(visitor: FileVisitor) -> None:
    posted = await visitor.client.post(
        FILES,
        params={"id": "f1"},
        data=real_pdf(),
        headers={"Origin": "https://evil.example"},
    )
    assert posted.status == 403


def test_files_are_told_by_their_first_bytes() -> None:
    assert file_type(real_png()) == "image/png"
    assert file_type(real_pdf()) == "application/pdf"
    assert file_type(b"\xff\xd8\xff\xe0\x00\x10JFIF") == "image/jpeg"
    assert file_type(b"RIFF\x10\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert file_type(b"\x00\x00\x00\x18ftypheic\x00\x00") == "image/heic"
    for other in (
        FAKE_PDF,
        b"",
        b"MZ\x90\x00",
        b"GIF89a",
        b"PK\x03\x04",
        b"RIFF\x00\x00\x00\x00WAVE",
    ):
        assert file_type(other) is None


def test_the_web_chat_says_it_takes_photos_and_pdfs() -> None:
    assert {"image", "document"} <= capabilities_of("web").media


NO_FILES = sorted(
    name
    for spec in specs()
    for name, capabilities in spec.capabilities.items()
    if not capabilities.media & {"image", "document"}
)
FILE_WORDS = ("PDF", "صور", "photo", "attach", "إرفاق")


def test_sms_and_the_console_say_they_take_no_files() -> None:
    assert {"sms", "console"} <= set(NO_FILES)
    assert "web" not in NO_FILES


@pytest.mark.parametrize("channel", NO_FILES)
@pytest.mark.parametrize("language", ["ar", "en"])
def test_a_channel_that_cannot_bring_files_is_never_asked_for_them(
    channel: str, language: str
) -> None:
    """Every question of the intake and of the researcher's question, on SMS and the
    console: none asks for a photo or a PDF."""
    chat = Transcript(channel=channel)
    said = [chat.send("السلام عليكم")]
    if language == "en":
        said.append(chat.send("English"))
    lines = [*INTAKE_AR[1:9], "done" if language == "en" else "تم", "نعم"]
    said += [chat.send(line) for line in lines]
    assert chat.saved, said[-1]
    reference = chat.requests[0].reference
    chat.staff_asks(reference, "هل لديك صك الإعالة؟")
    (notice,) = flows.status_notice(
        language,
        reference,
        "needs_info",
        "هل لديك صك الإعالة؟",
        media=capabilities_of(channel).media,
    )
    said.append(notice.text)
    said.append(chat.send(""))  # an empty answer is re-asked
    said.append(chat.send("0"))
    for reply in said:
        for word in FILE_WORDS:
            assert word not in reply, f"{channel} asked for files: {reply}"


async def test_a_visitor_attaches_a_pdf_in_the_browser(
    sqlite_database: Database, tmp_path: Path
) -> None:
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    tawasul = Tawasul(Settings(server={"media_dir": str(tmp_path / "media")}), sqlite_database)
    server = TestServer(tawasul.app(), host="127.0.0.1")
    await server.start_server()
    (tmp_path / "lease.pdf").write_bytes(real_pdf())
    (tmp_path / "fake.pdf").write_bytes(FAKE_PDF)
    try:
        async with playwright_api.async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = await browser.new_page(locale="ar")
            await page.goto(str(server.make_url("/chat")))
            box = page.get_by_role("textbox")
            for line in INTAKE_AR[:9]:
                replies = await page.locator(".bubble.bot").count()
                await box.fill(line)
                await box.press("Enter")
                await page.locator(".bubble.bot").nth(replies).wait_for()
            await page.get_by_text("أرسل صور المستندات").wait_for()
            attach = page.get_by_role("button", name="أرفق صورة أو ملف PDF")
            async with page.expect_file_chooser() as chooser:
                await attach.click()
            await (await chooser.value).set_files(str(tmp_path / "lease.pdf"))
            await page.get_by_text("📎 lease.pdf").wait_for()
            await page.get_by_text("استلمنا ١ من").wait_for()
            await page.set_input_files("#file", str(tmp_path / "fake.pdf"))
            await page.get_by_text("نستقبل الصور وملفات PDF فقط").wait_for()
            await browser.close()
    finally:
        await server.close()
    assert await count(sqlite_database, StoredMedia) == 1


@pytest.mark.parametrize("channel", NO_FILES)
@pytest.mark.parametrize("option", ["1", "2", "3", "4", "5", "6", "7"])
def test_no_menu_option_asks_a_channel_without_files_for_them(channel: str, option: str) -> None:
    """Each menu option, walked with ordinary answers: no question asks for a file."""
    chat = Transcript(channel=channel)
    answers = ["١", "نعم", "لدي اقتراح بتحسين أوقات الاستقبال في الفرع", "١", "تم", "لا"]
    said = [chat.send("السلام عليكم"), chat.send(option), *(chat.send(a) for a in answers)]
    assert len(set(said)) > 3  # the walk went somewhere
    for reply in said:
        for word in FILE_WORDS:
            assert word not in reply, f"{channel} asked for files: {reply}"
