"""The footer: every key the current screen offers, wrapping onto more lines when the
terminal is narrow (Textual's own Footer is one line and cuts keys off at 80 columns),
each key clickable."""

from __future__ import annotations

from textual import events
from textual.content import Content
from textual.dom import NoScreen
from textual.markup import escape
from textual.widgets import Static


class KeyBar(Static):
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: auto;
        max-height: 3;
        background: $panel;
        color: $foreground;
        padding: 0 1;
    }
    """

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self._bindings_changed(self.screen)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def on_resize(self, _: events.Resize) -> None:
        self._render_keys()

    def _bindings_changed(self, _: object) -> None:
        self.call_after_refresh(self._render_keys)

    def _render_keys(self) -> None:
        try:
            screen = self.screen
        except NoScreen:
            return  # the screen was dismissed between the bindings change and this refresh
        parts: list[Content] = []
        seen: set[str] = set()
        for key, active in screen.active_bindings.items():
            binding = active.binding
            action = binding.action.removeprefix("app.")
            if not binding.show or action in seen:
                continue
            seen.add(action)
            shown = self.app.get_key_display(binding)
            parts.append(self._key(key, shown, binding.description, active.enabled))
        if "command_palette" not in seen and self.app.ENABLE_COMMAND_PALETTE:
            parts.append(self._key("ctrl+p", "^p", "commands", True))
        # Pack whole keys into lines ourselves: Textual's wrapping would split a key from
        # its word ("d" at the end of one line, "diff" on the next).
        width = max(20, self.size.width - 2) if self.size.width else 200
        lines: list[Content] = []
        line = Content("")
        for part in parts:
            if line.cell_length and line.cell_length + 2 + part.cell_length > width:
                lines.append(line)
                line = Content("")
            line = line + Content("  ") + part if line.cell_length else part
        lines.append(line)
        self.update(Content("\n").join(lines))

    @staticmethod
    def _key(key: str, shown: str, desc: str, enabled: bool) -> Content:
        dim = "" if enabled else " dim"
        return Content.from_markup(
            f"[@click=app.press({key!r})][bold $accent{dim}]{escape(shown)}[/] "
            f"[$foreground{dim}]{escape(desc)}[/][/]"
        )
