"""The studio in real Chromium: edit files on disk and watch the open page follow, without reloading."""

from __future__ import annotations

import time

import pytest
from helpers.outbox import read_eml
from helpers.studio import EDITOR, WINTER, Studio
from playwright.sync_api import Frame, FrameLocator, Page, expect

pytestmark = pytest.mark.browser


def phone(page: Page) -> FrameLocator:
    return page.frame_locator('iframe[data-frame="phone"]')


def mark_page(page: Page) -> None:
    """Leave a mark on the page's window, which a reload would wipe."""
    page.evaluate("window.studioTestMark = 'not reloaded'")


def still_marked(page: Page) -> bool:
    return "not reloaded" == page.evaluate("window.studioTestMark")


def frame(page: Page, name: str) -> Frame:
    """The document inside one of the page's frames, to run script in."""
    handle = page.locator(f'iframe[data-frame="{name}"]').element_handle()
    assert handle is not None
    inside = handle.content_frame()
    assert inside is not None
    return inside


class TestLiveEditing:
    def test_a_saved_change_shows_without_reloading(self, page: Page, studio: Studio) -> None:
        """Saving the issue file puts the new words in the open page's frames, without a reload."""
        mark_page(page)
        expect(phone(page).get_by_text("The nights are drawing in")).to_be_visible()

        started = time.monotonic()
        studio.edit(
            studio.issue(), "\n  The nights are drawing in", "\n  The evenings are closing in"
        )
        expect(phone(page).get_by_text("The evenings are closing in")).to_be_visible()
        elapsed = time.monotonic() - started

        assert still_marked(page)
        assert elapsed < 5.0, f"the page took {elapsed:.1f} s to follow the save"

    def test_the_frames_keep_their_scroll_position(self, page: Page, studio: Studio) -> None:
        """After a save, each frame is where the editor had scrolled it."""
        desktop = page.frame_locator('iframe[data-frame="desktop"]')
        expect(desktop.get_by_text("The nights are drawing in")).to_be_visible()
        frame(page, "desktop").evaluate("window.scrollTo(0, 900)")
        page.wait_for_function(
            "document.querySelector('iframe[data-frame=desktop]').contentWindow.scrollY > 800"
        )
        loads = int(page.evaluate("document.body.dataset.framesLoaded || 0"))

        studio.edit(studio.issue(), "Last winter, more than 300", "Last winter, more than 400")
        page.wait_for_function(f"Number(document.body.dataset.framesLoaded || 0) >= {loads + 2}")
        expect(desktop.get_by_text("Last winter, more than 400")).to_be_attached()

        assert 900 == frame(page, "desktop").evaluate("Math.round(window.scrollY)")

    def test_a_broken_file_shows_its_problems_and_the_fix_brings_the_preview_back(
        self, page: Page, studio: Studio
    ) -> None:
        """A file that does not validate shows PATH:LINE messages; fixing it brings the frames back."""
        mark_page(page)
        studio.edit(studio.issue(), "status: ready", "status: ready\n\tdate: again")

        problems = page.locator("[data-problems]")
        expect(problems).to_contain_text(
            f"issues/{WINTER}.yaml:8: this line has a tab where YAML needs spaces: use spaces "
            "to indent, and after colons"
        )
        expect(page.locator("iframe[data-frame]")).to_have_count(0)

        studio.edit(studio.issue(), "status: ready\n\tdate: again", "status: ready")
        expect(phone(page).get_by_text("The nights are drawing in")).to_be_visible()
        expect(problems).to_have_count(0)
        assert still_marked(page)

    def test_a_change_to_mailer_toml_shows_too(self, page: Page, studio: Studio) -> None:
        """Settings are read again on save: a new newsletter name is in the email at once."""
        studio.edit(
            studio.folder / "mailer.toml",
            'name = "Connected Communities"\nlist_id',
            'name = "Connected Communities Network"\nlist_id',
        )

        expect(phone(page).get_by_text("Connected Communities Network").first).to_be_visible()

    def test_a_change_to_a_template_shows_too(self, page: Page, studio: Studio) -> None:
        """Templates are read again on save: the plain-text part follows its template."""
        page.get_by_role("link", name="Plain text").click()
        expect(page.locator("pre[data-text]")).to_contain_text("Hello Alex,")
        template = studio.folder / "templates" / "email.txt.j2"
        text = template.read_text(encoding="utf-8")
        template.write_text("Dear reader of the studio test.\n" + text, encoding="utf-8")

        expect(page.locator("pre[data-text]")).to_contain_text("Dear reader of the studio test.")


class TestViews:
    def test_dark_mode_applies_the_emails_dark_colours(self, page: Page) -> None:
        """Dark mode shows the email with its prefers-color-scheme: dark rules in force."""
        card = """() => {
            const inside = document.querySelector('iframe[data-frame=phone]').contentDocument;
            const card = inside && inside.querySelector('.dm-card > table');
            return card ? inside.defaultView.getComputedStyle(card).backgroundColor : null;
        }"""
        expect(phone(page).get_by_text("The nights are drawing in")).to_be_visible()
        light = page.evaluate(card)

        page.get_by_role("link", name="Dark mode").click()
        expect(page.get_by_role("link", name="Dark mode")).to_have_attribute("aria-pressed", "true")
        page.wait_for_function(
            f"(() => {{ const c = ({card})(); return c && c !== {light!r}; }})()"
        )
        dark = page.evaluate(card)

        assert "rgb(255, 255, 255)" == light
        red, green, blue = (int(part) for part in dark[4:-1].split(","))
        assert max(red, green, blue) < 80, dark

    def test_pictures_off_shows_the_alt_text(self, page: Page) -> None:
        """With pictures off, each picture is a box holding its alt text, as mail clients show it."""
        page.get_by_role("link", name="Pictures off").click()

        alts = phone(page).locator(".mailer-alt-text")
        expect(alts.first).to_have_text("Connected Communities")  # the logo, in the header
        expect(alts.nth(1)).to_have_text(
            "Six people of different ages chatting around a table with mugs of tea in a "
            "brightly lit community hall"
        )
        expect(phone(page).locator("img")).to_have_count(0)

    def test_the_plain_text_part(self, page: Page) -> None:
        """Plain text shows the text part as members' text-only clients get it."""
        page.get_by_role("link", name="Plain text").click()

        expect(page.locator("pre[data-text]")).to_contain_text("Hello Alex,")
        expect(page.locator("iframe[data-frame]")).to_have_count(0)

    def test_the_inbox_row_shows_subject_and_preheader(self, page: Page) -> None:
        """The inbox row shows the sender, the subject and the preheader, cut as a phone cuts them."""
        row = page.locator(".inbox .row")

        expect(row.locator(".from strong")).to_have_text("Connected Communities")
        expect(row.locator(".subject")).to_have_text(
            "Winter connections: warm spaces, Christmas support and your January invitation"
        )
        expect(row.locator(".preheader")).to_contain_text("Christmas opening hours")

    def test_every_variant_the_list_gets_with_its_members(self, page: Page) -> None:
        """The variant list names every variant the sample list produces, with its members."""
        options = page.locator("#variant-picker optgroup:first-child option").all_inner_texts()
        counts = [int(option.split(" · ")[1].split()[0]) for option in options]

        assert (23, 60) == (len(options), sum(counts))
        assert "in-person · 13 members" == options[0]

    def test_another_variant(self, page: Page) -> None:
        """Choosing a variant shows what its members get: youth sees the youth toolkit."""
        page.select_option("#variant-picker", label="youth · 8 members")

        expect(
            phone(page).get_by_role(
                "heading", name="New toolkit: “Nobody should feel left on read”"
            )
        ).to_be_visible()
        expect(page.locator("[data-variant-label]")).to_have_text("Youth loneliness")

    def test_a_members_personalisation(self, page: Page) -> None:
        """Finding a member shows the issue as they get it: their name, their variant."""
        page.locator("[data-member-search]").fill("Aled")
        page.get_by_role("link", name="Aled Pritchard · Bridgend Youth Connect").click()

        expect(page.locator("[data-chosen]")).to_contain_text(
            "Aled Pritchard (aled.pritchard@bridgend-youth-connect.example.org)"
        )
        expect(phone(page).get_by_text("Hello Aled,")).to_be_visible()
        expect(page.locator("#variant-picker option:checked")).to_have_text(
            "youth+in-person+wales · 1 member"
        )


class TestSendMeATest:
    def test_the_variant_on_screen_goes_to_the_editors(self, page: Page, studio: Studio) -> None:
        """The button sends what is on screen to mailer.toml's editors, marked [TEST], to the outbox."""
        page.select_option("#variant-picker", label="youth · 8 members")
        expect(page.locator("[data-send-test]")).to_have_attribute("data-variant", "youth")

        page.get_by_role("button", name="Send me a test").click()

        folder = studio.outbox / f"{WINTER}--test"
        expect(page.locator("[data-send-result]")).to_have_text(
            f"Sent youth to {EDITOR} through outbox (in {folder}/), subject marked [TEST]."
        )
        [sent] = sorted(folder.glob("*.eml"))
        message = read_eml(sent)
        assert (
            EDITOR,
            "[TEST] Winter connections: a new youth toolkit, warm spaces and your January "
            "invitation",
        ) == (
            message["To"].addresses[0].addr_spec,
            message["Subject"],
        )
        text = message.get_body(("plain",)).get_content()
        assert "Nobody should feel left on read" in text
        assert "Hello Alex," in text
