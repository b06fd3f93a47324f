"""A demo editor and a demo live story, for trying liveblog out (``liveblog demo``).

Storm Aurelia, Port Wennick and everyone quoted below are made up.
"""

from __future__ import annotations

import io
import secrets
from datetime import timedelta

from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import update as sql_update
from sqlmodel import col

from liveblog import articles, auth, store
from liveblog.models import (
    BylineName,
    CategoryCreate,
    Role,
    Story,
    StoryCreate,
    StoryStatus,
    UpdateCreate,
    utcnow,
)
from liveblog.state import Liveblog

DEMO_USERNAME = "demo"
DEMO_DISPLAY_NAME = "Demo Desk"
DEMO_SLUG = "storm-aurelia"

DEMO_STORY = StoryCreate(
    slug=DEMO_SLUG,
    title="Storm Aurelia makes landfall near Port Wennick: live updates",
    summary=(
        "Storm Aurelia has come ashore just south of the coastal town of Port Wennick, with "
        "gusts above 140 km/h. Thousands of people have been told to leave low-lying streets, "
        "power is out along the coast and a flood warning is in force for tonight's high tide. "
        "(Demo story: the storm, the town and everyone in it are fictional.)"
    ),
    status=StoryStatus.live,
    breaking=True,
    # The story as an article (issue 14): a byline, a lead with two sections, two
    # categories (made by seed_demo when missing).
    authors=[DEMO_USERNAME, BylineName(name="Staff and agencies")],
    categories=["weather", "coast"],
    lead=(
        "Storm Aurelia is the first named storm of the season to reach the coast. This page "
        "follows it hour by hour; the background is below.\n\n"
        "## What to expect\n\n"
        "Gusts of **140 km/h** or more along the coast until late evening, then a storm "
        "surge at high tide, around 21:00. The flood warning covers the harbour, the "
        "Esplanade and the streets below Quay Hill.\n\n"
        "## How to stay safe\n\n"
        "- Leave the low-lying streets if you have been told to.\n"
        "- Keep away from the sea front and from fallen power lines.\n"
        "- Call 112 only in an emergency.\n\n"
        "> Treat every flooded road as closed.\n"
        "> — Port Wennick fire service"
    ),
)
DEMO_CATEGORIES = (CategoryCreate(name="Weather"), CategoryCreate(name="Coast"))
DEMO_BIO = "The demo's editor: posts the live updates of the demo story."

# In the order they are posted, oldest first: readers see them newest first.
DEMO_UPDATES: tuple[UpdateCreate, ...] = (
    UpdateCreate(
        headline="Storm Aurelia strengthens as it nears the coast",
        body=(
            "Forecasters at the **Coastal Weather Service** say Storm Aurelia strengthened "
            "overnight, with sustained winds now close to 110 km/h. The centre is expected to "
            "cross the coast near **Port Wennick** early this afternoon.\n\n"
            "The full advisory, with the forecast track, is on the "
            "[Coastal Weather Service website](https://example.org/advisories/aurelia)."
        ),
    ),
    UpdateCreate(
        headline="Evacuation centres and emergency numbers",
        pinned=True,
        body=(
            "If you have been told to leave, go now. These centres are open and have room:\n\n"
            "- **Wennick Community College**, Harbour Road (pets welcome)\n"
            "- **St Bride's Hall**, Upper Mill Lane\n"
            "- **Kestrel Leisure Centre**, Ferris Way (step-free, with medical staff)\n\n"
            "In an emergency, call **999**. For anything else (sandbags, fallen trees, power "
            "cuts) call the council storm line on **0300 555 0142**.\n\n"
            "Road closures are on the [council's live map](https://example.org/roads)."
        ),
    ),
    UpdateCreate(
        headline="Everyone below the sea wall told to leave",
        key_event=True,
        body=(
            "The council has ordered everyone living in **Harbourside, the Saltings and Lower "
            "Quay** to leave their homes by noon. About 4,000 people are affected.\n\n"
            "> We are not asking. If you live below the sea wall, you need to go now, and you "
            "need to take your medicines with you.\n"
            ">\n"
            "> — Tamsin Rowe, Mayor of Port Wennick"
        ),
    ),
    UpdateCreate(
        body=(
            "All ferries from Port Wennick are cancelled for the rest of the day, and the coast "
            "railway is closed between Wennick and Alder Point. Both operators say services "
            "will not run again before tomorrow morning."
        ),
    ),
    UpdateCreate(
        body=(
            "Our reporter on the promenade says waves are already breaking over the sea wall, "
            "throwing shingle across the coast road. Police have closed the promenade to "
            "everyone, including people on foot."
        ),
    ),
    UpdateCreate(
        headline="Power cuts spreading along the coast",
        body=(
            "About **18,000 homes** are without electricity, according to the grid operator, "
            "most of them north of the harbour. Engineers cannot climb poles until the wind "
            "drops, so some people should expect to be without power overnight."
        ),
    ),
    UpdateCreate(
        headline="Storm Aurelia makes landfall",
        key_event=True,
        body=(
            "The Coastal Weather Service confirms that the centre of Storm Aurelia has crossed "
            "the coast **just south of Port Wennick**. A gust of 143 km/h was recorded at the "
            "harbour lighthouse, the strongest ever measured there."
        ),
    ),
    UpdateCreate(
        body=(
            "Readers in the Saltings are sending us pictures of sea water pouring over the "
            "quayside and into the ground floors of shops on Fish Street. Thank you, but "
            "please don't put yourself in danger to take them."
        ),
    ),
    UpdateCreate(
        headline="Coastguard: stay away from the shore",
        body=(
            "> Do not go and look at the waves, and do not drive through flood water. It takes "
            "about 30 centimetres of moving water to float a car.\n"
            ">\n"
            "> — Station Officer Idris Mensah, Wennick Coastguard\n\n"
            "Coastguard crews have helped **eleven people** out of flooded homes so far."
        ),
    ),
    UpdateCreate(
        headline="Roads closed",
        body=(
            "These roads are closed because of flooding or fallen trees:\n\n"
            "1. Coast Road, between the harbour and Alder Point\n"
            "2. Harbour Road, at the Fish Street junction\n"
            "3. Mill Lane, under the railway bridge\n\n"
            "The [council's live map](https://example.org/roads) is updated every 15 minutes."
        ),
    ),
    UpdateCreate(
        headline="Hospital switches to generators",
        body=(
            "Wennick General Hospital is running on backup generators after losing mains "
            "power. It says every patient is safe and the emergency department is **open**, "
            "but asks people to come in only for emergencies."
        ),
    ),
    UpdateCreate(
        headline="Wind easing, but the flood warning stays",
        key_event=True,
        body=(
            "The strongest winds have moved inland, and the Coastal Weather Service has "
            "lowered its wind warning from red to amber. A **flood warning remains in force** "
            "for the evening high tide.\n\n"
            "If you left your home, don't go back yet: the council will say when it is safe."
        ),
    ),
)


# Minutes before "now" at which each update above was posted: a storm afternoon.
DEMO_MINUTES_AGO = (178, 171, 152, 140, 126, 109, 94, 71, 55, 38, 21, 6)
DEMO_IMAGE = {
    "image_alt": "Map of the coast with Storm Aurelia's forecast track crossing it near "
    "Port Wennick",
    "image_caption": "Storm Aurelia's forecast track: the centre crosses the coast just "
    "south of Port Wennick.",
    "image_credit": "Graphic: Coastal Weather Service (illustration)",
}


def forecast_graphic() -> bytes:
    """A simple forecast-track map, drawn here so the demo shows an image offline."""
    width, height = 1200, 675
    image = Image.new("RGB", (width, height), (32, 86, 138))
    draw = ImageDraw.Draw(image)
    land = [(560, 0), (1200, 0), (1200, 675), (700, 675), (640, 560), (690, 430), (610, 300),
            (650, 170)]  # fmt: skip
    draw.polygon(land, fill=(205, 198, 170), outline=(120, 110, 90))
    track = [(90, 620), (260, 520), (420, 420), (560, 350), (660, 300), (820, 230), (1010, 150)]
    draw.line(track, fill=(255, 255, 255), width=6, joint="curve")
    for x, y in track:
        draw.ellipse((x - 14, y - 14, x + 14, y + 14), fill=(200, 30, 40), outline="white")
    draw.ellipse((668, 278, 690, 300), fill=(20, 20, 20))
    font = ImageFont.load_default(size=30)
    draw.text((700, 250), "Port Wennick", fill=(20, 20, 20), font=font)
    draw.text((40, 30), "Storm Aurelia: forecast track", fill="white", font=font)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


async def seed_demo(liveblog: Liveblog) -> tuple[str, str]:
    """Create (or refresh) the demo editor and story; returns the editor's login."""
    password = secrets.token_urlsafe(12)
    async with liveblog.db.transaction() as session:
        user = await store.get_user_by_username(session, DEMO_USERNAME)
        if user is None:
            user = await auth.create_user(
                session,
                username=DEMO_USERNAME,
                password=password,
                role=Role.editor,
                display_name=DEMO_DISPLAY_NAME,
            )
        else:
            # Only the hash is stored, so the old password cannot be shown again; a new
            # one (and reactivation) is what makes the printed login work.
            user.password_hash = auth.hash_password(password)
            user.active = True
            session.add(user)
        if not user.bio:
            user.bio = DEMO_BIO
            session.add(user)
        for category in DEMO_CATEGORIES:
            if await articles.get_category(session, store.slugify(category.name)) is None:
                await articles.create_category(session, category)

    async with liveblog.db.session() as session:
        story = await store.get_story(session, DEMO_SLUG)
        posted = 0 if story is None else await store.count_updates(session, story)
    now = utcnow()
    started = now - timedelta(minutes=DEMO_MINUTES_AGO[0] + 4)
    if story is None:
        story = await liveblog.newsroom.create_story(DEMO_STORY, actor=user)
        async with liveblog.db.transaction() as session:
            # The coverage began before its first update (the demo's times are spread out).
            await session.exec(
                sql_update(Story)
                .where(col(Story.id) == story.id)
                .values(created_at=started, started_at=started)
            )
    # An existing story that already has updates is left alone: re-running the demo
    # must not post the timeline twice (or undo an editor's changes to it).
    if posted == 0 and story.status != StoryStatus.ended:
        graphic = await liveblog.media.save(forecast_graphic())
        image: dict[str, str | int] = {**DEMO_IMAGE, "image_url": graphic.url}
        image |= {"image_width": graphic.width, "image_height": graphic.height}
        for n, (update, minutes) in enumerate(zip(DEMO_UPDATES, DEMO_MINUTES_AGO, strict=True)):
            data = update.model_copy(update=image) if n == 0 else update
            await liveblog.newsroom.post_update(
                DEMO_SLUG, data, author=user, created_at=now - timedelta(minutes=minutes)
            )
    return DEMO_USERNAME, password
