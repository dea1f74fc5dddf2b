"""``{name}`` placeholders in task text and custom argv, replaced without a parser.

Done by hand rather than ``str.format``: a task full of code (``{`` and ``}`` everywhere)
must never be parsed as a format string, and only the names given are replaced.

A value is never spliced into shell text.  The previous agent's last message, a remote
``tmux_target``, a worktree path: any of them may hold ``$(...)``.  So:

- in an ordinary argv element a placeholder is replaced by its value (the element stays
  one argument, which no shell reads);
- in shell text (the ``shell`` profile's task, the script after ``sh -c`` in a custom
  profile or ``attach_command``) it becomes a quoted variable reference,
  ``"$MULLUI_PREV_LAST_MESSAGE"``, and the value travels in the environment
  (:func:`env_name`);
- after ``ssh`` (a remote shell reads those words, and our environment does not reach
  it) it becomes the value shell-quoted as one word;
- one written inside quotes in shell text is refused with a hint: ``'{x}'`` would not
  expand and ``"{x}"`` would need the quotes around it removed.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterable, Sequence

from mullui.errors import MulluiError


def expand(template: str, values: dict[str, str]) -> str:
    """Replace ``{key}`` for the keys in ``values``; any other brace stays as typed."""
    out: list[str] = []
    i = 0
    while i < len(template):
        if template[i] == "{":
            end = template.find("}", i)
            key = template[i + 1 : end] if end > 0 else ""
            if key in values:
                out.append(values[key])
                i = end + 1
                continue
        out.append(template[i])
        i += 1
    return "".join(out)


# ---- shell text ----------------------------------------------------------------------
#: The previous agent's values a follow-up's task may name (``--after``, chains).
PREV_KEYS = ("prev.id", "prev.worktree", "prev.branch", "prev.last_message")
#: Variables whose names say more than the placeholder's own.
_NAMES = {"id": "MULLUI_AGENT_ID", "name": "MULLUI_AGENT_NAME"}


def env_name(key: str) -> str:
    """The environment variable that carries placeholder ``key`` into shell text:
    ``prev.last_message`` -> ``MULLUI_PREV_LAST_MESSAGE``, ``task`` -> ``MULLUI_TASK``."""
    return _NAMES.get(key) or "MULLUI_" + re.sub(r"[^A-Za-z0-9]", "_", key).upper()


def shell_text(
    script: str, keys: Iterable[str], where: str, quoted: dict[str, str] | None = None
) -> str:
    """``script`` (sh syntax) with each ``{key}`` replaced by ``"$MULLUI_KEY"`` - or,
    for a remote shell that our environment does not reach (``ssh HOST CMD``), by the
    value of ``quoted[key]`` shell-quoted as one word.

    Raises ``MulluiError`` naming ``where`` when a placeholder sits inside quotes."""
    wanted = set(keys)
    out: list[str] = []
    quote: str | None = None  # None, "'", '"' or "$'"
    i = 0
    while i < len(script):
        c = script[i]
        if c == "{":
            end = script.find("}", i)
            key = script[i + 1 : end] if end > 0 else ""
            if key in wanted:
                if quote is not None:
                    raise _quoted(key, where)
                out.append(
                    shlex.quote(quoted[key]) if quoted is not None else f'"${env_name(key)}"'
                )
                i = end + 1
                continue
        out.append(c)
        i += 1
        if quote is None:
            if c == "\\" and i < len(script):
                out.append(script[i])
                i += 1
            elif c == "'":
                quote = "'"
            elif c == '"':
                quote = '"'
            elif c == "$" and script.startswith("'", i):
                out.append("'")
                quote, i = "$'", i + 1
        elif quote in ('"', "$'") and c == "\\" and i < len(script):
            out.append(script[i])
            i += 1
        elif (quote == '"' and c == '"') or (quote in ("'", "$'") and c == "'"):
            quote = None
    return "".join(out)


def _quoted(key: str, where: str) -> MulluiError:
    var = env_name(key)
    return MulluiError(
        f'{where}: {{{key}}} is inside quotes in shell text; write it bare (echo "got:" '
        f'{{{key}}}) - mullui puts it in as "${var}", the value stays data and never runs'
    )


#: Programs whose ``-c`` argument is shell text.
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "busybox"})


def _program(arg: str) -> str:
    return os.path.basename(arg)


def shell_script_index(argv: Sequence[str]) -> int | None:
    """The index of the shell script in ``argv`` (``sh -c SCRIPT``, ``bash -lc SCRIPT``,
    also behind a terminal or ``env``: ``foot -e sh -c SCRIPT``), or None."""
    for i, arg in enumerate(argv):
        if _program(arg) not in SHELLS:
            continue
        for j in range(i + 1, len(argv)):
            a = argv[j]
            if a in ("sh", "-") or not a.startswith("-") or a == "--":
                break  # busybox sh ..., or the shell's first operand: no -c
            if not a.startswith("--") and "c" in a[1:]:
                return j + 1 if j + 1 < len(argv) else None
    return None


def _ssh_index(argv: Sequence[str]) -> int | None:
    """Where ``ssh`` is in ``argv``: what follows it is run by the remote shell."""
    return next((i for i, a in enumerate(argv) if _program(a) == "ssh"), None)


def expand_argv(
    template: Sequence[str], values: dict[str, str], where: str
) -> tuple[list[str], dict[str, str]]:
    """``template`` with its placeholders filled in, and the environment the shell text
    in it (if any) reads them from.  See the module docstring; after ``ssh`` each value
    is one shell-quoted word (the remote shell reads the command; our environment does
    not reach it), and one inside quotes there is refused too."""
    script = shell_script_index(template)
    ssh = _ssh_index(template)
    argv: list[str] = []
    env: dict[str, str] = {}
    for i, arg in enumerate(template):
        used = [k for k in values if "{" + k + "}" in arg]
        if ssh is not None and i > ssh and used:
            argv.append(shell_text(arg, used, where, quoted=values))
        elif i == script:
            argv.append(shell_text(arg, used, where))
            env.update({env_name(k): values[k] for k in used})
        else:
            argv.append(expand(arg, values))
    return argv, env
