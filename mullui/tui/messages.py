"""What screens tell the app (Textual's "attributes down, messages up").

The app hands each screen what it shows (agents, colours, a function for a log's path);
a screen never imports the app.  When a screen needs the app to act, it posts one of
these; the app handles it (``on_select_agent``, ``on_render_wanted``, ...).
"""

from __future__ import annotations

from textual.message import Message


class SelectAgent(Message):
    """Go back to the main screen with this agent selected (a collisions row, ...)."""

    def __init__(self, agent_id: str) -> None:
        super().__init__()
        self.agent_id = agent_id


class RenderWanted(Message):
    """Render the agents again (the main screen was mounted or resized: widths changed)."""


class CollisionsChecked(Message):
    """The radar answered and refreshed the records: catch up with them now."""
