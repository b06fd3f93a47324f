"""A fresh data directory with a long live story, made through the app's own write path.

Every update goes through ``store.post_update``, the function the newsroom's write
path (desk and API) calls, so each gets its event in the log exactly as a posted one
would; only the publish is left out, since no reader can be connected yet. The text is
made up (a storm night in a fictional valley), a few sentences of Markdown each, some
with a headline, a list, a quote or a link, so the rendered fragments weigh what real
ones do (their HTML 650-1,200 bytes).
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import col, func, select

from liveblog import auth, store
from liveblog.app import create_app
from liveblog.models import Role, StoryCreate, StoryEvent, StoryStatus, UpdateCreate
from liveblog.settings import Settings
from liveblog.state import Liveblog

SLUG = "crowd-story"
USERNAME = "crowd-editor"
BATCH = 500

PLACES = (
    "Holloway Bridge", "the Saltmarsh estate", "Upper Fenwick", "the ring road",
    "Corran Quay", "St Aldric's school", "the old mill", "Brackley Common",
    "the retail park", "Mardale reservoir", "the A38 underpass", "Kettle Lane",
)  # fmt: skip
PEOPLE = (
    ("Ruth Okafor", "the council's emergency planning officer"),
    ("Dev Malhotra", "a spokesperson for the fire service"),
    ("Inspector Hanna Berg", "of Vale Police"),
    ("Tomasz Wilk", "who runs the café on Market Street"),
    ("Dr Amara Lindqvist", "the hydrologist advising the council"),
)
SENTENCES = (
    "Water levels at {place} rose by {n} cm in the last hour, the river authority says.",
    "Crews are pumping water out of homes near {place}, where about {n} properties are affected.",
    "Police have closed the road at {place} in both directions; drivers are asked to use "
    "the bypass instead.",
    "The rest centre at **{place}** now has {n} people staying overnight, and still has room.",
    "Power has been restored to {n} homes around {place}, but engineers warn that more "
    "cuts are possible before morning.",
    "Sandbags are being handed out at {place} until midnight; bring your own car if you can.",
    "A second flood barrier at {place} has been raised as a precaution.",
    "Buses are not stopping at {place} for the rest of the evening, the operator says.",
    "Volunteers at {place} are asking for blankets and dry socks rather than food.",
    "The gauge at {place} is now {n} cm below its peak, the first fall since the afternoon.",
)
HEADLINES = (
    "Flood warning extended to {place}",
    "Road closed at {place}",
    "Rest centre opens at {place}",
    "River peaks near {place}",
    "Power cuts spread to {place}",
    "Barrier holds at {place}",
)
LINKS = (
    "[Live river levels](https://example.org/river-levels)",
    "[Road closures map](https://example.org/roads)",
    "[How to report a power cut](https://example.org/power)",
)


def update_text(rng: random.Random) -> UpdateCreate:
    """One update as an editor on a storm night writes one."""

    def fill(template: str) -> str:
        return template.format(place=rng.choice(PLACES), n=rng.randint(3, 400))

    paragraphs = [" ".join(fill(rng.choice(SENTENCES)) for _ in range(rng.randint(2, 3)))]
    shape = rng.random()
    if shape < 0.15:
        who, role = rng.choice(PEOPLE)
        said = fill(rng.choice(SENTENCES))
        paragraphs.append(f"> {said} Please keep away from the water.\n>\n> — {who}, {role}")
    elif shape < 0.3:
        paragraphs.append(
            "Still closed:\n\n" + "\n".join(f"- {place}" for place in rng.sample(PLACES, 3))
        )
    elif shape < 0.6:
        paragraphs.append(fill(rng.choice(SENTENCES)) + f" {rng.choice(LINKS)}.")
    headline = fill(rng.choice(HEADLINES)) if rng.random() < 0.3 else None
    return UpdateCreate(
        body="\n\n".join(paragraphs), headline=headline, key_event=rng.random() < 0.05
    )


@dataclass
class Seeded:
    data_dir: Path
    slug: str
    token: str
    last_seq: int
    seconds: float
    event_bytes: tuple[int, int, int]  # min, median, max of an event's data (the JSON)


async def seed(data_dir: Path, *, updates: int, rng: random.Random) -> Seeded:
    """Create the editor, its API token and a live story of ``updates`` updates."""
    started = time.monotonic()
    app = create_app(Settings(data_dir=data_dir))
    async with app.router.lifespan_context(app):
        liveblog: Liveblog = app.state.liveblog
        async with liveblog.db.transaction() as session:
            user = await auth.create_user(
                session,
                username=USERNAME,
                password=f"crowd {rng.getrandbits(64):x}",
                role=Role.editor,
                display_name="Crowd Desk",
            )
            token = await auth.create_api_token(session, user, name="crowd bench")
        story = StoryCreate(
            slug=SLUG,
            title="Floods across the Vale: live updates",
            summary="The river is expected to peak tonight. (Benchmark story; all made up.)",
            status=StoryStatus.live,
            breaking=True,
        )
        created = await liveblog.newsroom.create_story(story, actor=user)
        # The newsroom's write path without its publish (no reader can be connected to
        # this process), a batch per transaction: ten times faster than one per post.
        posted = 0
        while posted < updates:
            batch = min(BATCH, updates - posted)
            async with liveblog.db.transaction() as session:
                locked = await store.get_story(session, SLUG, lock=True)
                assert locked is not None
                for _ in range(batch):
                    await store.post_update(
                        session,
                        story=locked,
                        data=update_text(rng),
                        author=user,
                        renderer=liveblog.renderer,
                    )
            posted += batch
        async with liveblog.db.session() as session:
            sizes = list(
                (
                    await session.exec(
                        select(func.length(StoryEvent.data)).where(
                            col(StoryEvent.story_id) == created.id
                        )
                    )
                ).all()
            )
            last_seq = max((await session.exec(select(func.max(StoryEvent.seq)))).one() or 0, 0)
    sizes.sort()
    return Seeded(
        data_dir=data_dir,
        slug=SLUG,
        token=token,
        last_seq=last_seq,
        seconds=time.monotonic() - started,
        event_bytes=(sizes[0], int(statistics.median(sizes)), sizes[-1]) if sizes else (0, 0, 0),
    )
