"""Notifications: tell the human the moment an agent is blocked, done or failed.

Desktop popups (desktop-notifier over D-Bus) with a terminal fallback (OSC 777/9 + BEL)
and an in-app toast; dedupe, burst coalescing, focus suppression, quiet hours and one
escalation reminder for a still-blocked agent.  Independent of the model: it takes
plain :class:`Notice` values.
"""

from mullui.notify.notifier import (
    ActionCallback,
    Notifier,
    ToastCallback,
    notify_mode,
)
from mullui.notify.policy import (
    NOTIFIED_STATES,
    Clock,
    Delivery,
    Notice,
    NotifyConfig,
    NotifyPolicy,
    QuietHours,
    SystemClock,
    attach_argv,
    parse_quiet_hours,
)
from mullui.notify.terminal import terminal_sequence

__all__ = [
    "NOTIFIED_STATES",
    "ActionCallback",
    "Clock",
    "Delivery",
    "Notice",
    "Notifier",
    "NotifyConfig",
    "NotifyPolicy",
    "QuietHours",
    "SystemClock",
    "ToastCallback",
    "attach_argv",
    "notify_mode",
    "parse_quiet_hours",
    "terminal_sequence",
]
