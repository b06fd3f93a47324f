"""Link embeds: a link pasted on its own line in an update becomes a card (docs/embeds.md).

``providers`` knows who serves a link, ``resolver`` asks them once and keeps the answer,
``page_meta`` reads a page's Open Graph and oEmbed discovery, ``frame_markup`` cleans a
provider's markup for the click-through frame (``liveblog/views/embed_frame.py``). The
card itself is ``templates/_embed_card.html``, put in by ``Renderer.update_body``.
"""
