"""The collision guard: answer "agent A is about to edit FILE" before the edit lands.

The radar keeps a small index per repository on disk (``<state>/guard/<key>.json``, written
atomically after each pass, see :func:`write_index`): every local agent whose work is
neither merged nor removed (name, branch, worktree, profile, its ``--guard``), and for each
file some agent changed, which agents did.  An agent's edit hook hands its tool input to
:func:`hook_answer`; that reads the index (never git), and when the file is in the change
set of another agent it answers by the mode in force for the agent
(``spawn --guard`` > ``[profiles.P] guard`` > ``[collisions] guard``):

- ``warn``: the edit goes ahead; the agent is told who else changes the file; the human gets
  one inbox item (and notification) per new pair and file;
- ``ask``: the agent is ``blocked`` with cause ``collision:PATH`` and the CLI's own permission
  dialog opens; the human allows or refuses it as any permission prompt (OpenCode with
  edits allowed has none: its plugin holds the call, see :func:`decide_held`);
- ``block``: the edit is refused with a reason naming the other agent and its branch;
- ``off``: nothing.

Import-light on purpose: it runs inside the agent's hook (``fasthook/answer.py`` starts
``python -S -I`` for it) for an edit of a file another agent changed, and the budget is a
bare Python start plus a few syscalls (measured on 2 shared cores: ``python3 -S -I -c pass``
~7 ms CPU; ``import json`` +7 ms, since it pulls ``re``/``enum``; ``pathlib`` +5 ms;
``hashlib`` +3 ms).  So at import it loads only ``os``; the hook path parses and writes JSON
with the ``_json`` C accelerator directly (:func:`loads`, :func:`dumps`) and hashes with
``_sha1``; ``json`` and ``pathlib`` are imported lazily by the radar's side (writing the
index).  What the guard did is written as ONE line appended to the agent's raw spool, in
``fasthook/spool.sh``'s format (event ``guard``, see :func:`record`): the store folds it
like any hook line, exactly once, after the edit hook's own line.

What each profile contributes: :data:`EDIT_HOOKS` maps a hook event to how its payload
names the file (:func:`edit_target`), and :data:`ANSWERS` to how the CLI reads an answer.
"""

from __future__ import annotations

import os
import sys

# Annotations only: importing typing, dataclasses, ... would cost every edit hook ~10 ms
# (python -S -I, see fasthook/answer.py).  Type checkers take this branch.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path
    from typing import Any

    StrPath = str | os.PathLike[str]

MODES = ("off", "warn", "ask", "block")
DEFAULT_MODE = "warn"
INDEX_VERSION = 1
#: The sub-directory of the state dir with the radar's index files.
INDEX_DIR = "guard"
#: Event names whose hooks may get an answer; fasthook's ``answer/EVENT`` markers.
ANSWER_DIR = "answer"
#: Files longer than this are not an index we wrote.
MAX_INDEX_BYTES = 16 * 1024 * 1024
#: The raw hook event (``spool/<id>.hooks``) that carries what the guard did.
GUARD_EVENT = "guard"

#: Claude Code's file-writing tools and the key of the path in their input.
CLAUDE_EDIT_TOOLS = {
    "Edit": "file_path",
    "Write": "file_path",
    "MultiEdit": "file_path",
    "NotebookEdit": "notebook_path",
}

#: Gemini CLI's file-writing tools (BeforeTool) and the key of the path in their input.
GEMINI_EDIT_TOOLS = {"write_file": "file_path", "replace": "file_path"}

#: OpenCode's file-writing tools (its plugin's ``tool.execute.before``) and the key of the
#: path in their args; the plugin (mullui/agents/opencode.py) hands the answer path
#: ``{"tool", "args": {key: path}, "cwd", "sessionID"}``.
OPENCODE_EDIT_TOOLS = {"edit": "filePath", "write": "filePath"}
OPENCODE_EVENT = "tool.execute.before"


# ---- JSON without ``import json`` (7 ms of a 10 ms budget) ---------------------------------
_CONSTANTS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


class _Ctx:
    """What ``_json.make_scanner`` reads off ``json.JSONDecoder``."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__


_scan: Any = None


def loads(data: bytes | str) -> Any:
    """``json.loads`` through the C scanner ``json`` itself uses; raises ValueError (also
    for invalid UTF-8, trailing data, nesting too deep)."""
    global _scan
    if _scan is None:
        try:
            import _json

            _scan = _json.make_scanner(_Ctx())  # type: ignore[arg-type]
        except ImportError:  # no C accelerator: the real thing
            import json

            _scan = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
    text = data.decode() if isinstance(data, bytes) else data
    text = text.strip(" \t\n\r")
    try:
        doc, end = _scan(text, 0)
    except StopIteration:
        raise ValueError("not JSON") from None
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    if end != len(text):
        raise ValueError("extra data after JSON")
    return doc


def dumps(obj: Any) -> str:
    """``json.dumps`` of str / int / float / bool / None / list / tuple / dict (str keys)."""
    json = sys.modules.get("json")
    if json is not None:  # already paid for (the radar's side): its C encoder, same text
        return str(json.dumps(obj))
    from _json import encode_basestring_ascii as enc

    if isinstance(obj, str):
        return str(enc(obj))
    if obj is None or isinstance(obj, bool):
        return {None: "null", True: "true", False: "false"}[obj]
    if isinstance(obj, int):
        return str(int(obj))
    if isinstance(obj, float):
        r = float.__repr__(obj)
        return {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}.get(r, r)
    if isinstance(obj, (list, tuple)):
        return "[" + ", ".join(dumps(x) for x in obj) + "]"
    if isinstance(obj, dict):
        return "{" + ", ".join(f"{enc(str(k))}: {dumps(v)}" for k, v in obj.items()) + "}"
    raise TypeError(f"not JSON-serializable here: {type(obj).__name__}")


class _Record:
    """A small immutable record (not a dataclass: importing ``dataclasses`` would cost
    every edit hook several ms)."""

    __slots__: tuple[str, ...] = ()

    def _key(self) -> tuple[object, ...]:
        return tuple(getattr(self, k) for k in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__)
        return f"{type(self).__name__}({fields})"


class Other(_Record):
    """Another agent that has changed the file."""

    __slots__ = ("id", "name", "branch")

    def __init__(self, id: str, name: str, branch: str) -> None:  # noqa: A002
        self.id, self.name, self.branch = id, name, branch


class Decision(_Record):
    """What the guard does about one edit (``mode`` is never "off")."""

    __slots__ = ("mode", "agent", "path", "others")

    def __init__(self, mode: str, agent: str, path: str, others: tuple[Other, ...]) -> None:
        self.mode = mode  # warn | ask | block
        self.agent = agent  # the agent about to edit
        self.path = path  # relative to the repository root
        self.others = others

    def names(self) -> str:
        return ", ".join(f"{o.name} (branch {o.branch})" for o in self.others)

    def reason(self) -> str:
        """One paragraph for the agent: who else changes the file, and what to do."""
        who = self.names()
        many = len(self.others) > 1
        if self.mode == "block":
            return (
                f"mullui collision guard: {self.path} is already changed by another agent's "
                f"unmerged work: {who}. This edit was refused so the two branches do not "
                f"collide. Leave {self.path} alone: work on other files, or say in your "
                f"answer what change {self.path} needs so the human can coordinate it."
            )
        if self.mode == "ask":
            return (
                f"mullui collision guard: {self.path} is also changed by {who}; "
                "the human decides whether this edit goes ahead."
            )
        return (
            f"mullui collision guard: {self.path} is also changed by "
            f"{'other agents' if many else 'another agent'} ({who}), not merged yet. "
            "Keep your change to this file small and focused so the branches merge cleanly."
        )

    def question(self) -> str:
        """The inbox line for ``ask``: the CLI's own permission dialog takes the answer, and
        a reply is mapped to its keys (``mullui send``: ``y`` allows once, ``n`` refuses)."""
        return (
            f"collision: edit {self.path}, also changed by {self.names()}? "
            "y allows this edit, n refuses it"
        )


# ---- the index -----------------------------------------------------------------------------
def repo_key(repo: str) -> str:
    """The index file name of a repository (its real path, hashed)."""
    try:
        from _sha1 import sha1  # type: ignore[import-not-found]  # hashlib: OpenSSL, 3 ms
    except ImportError:
        from hashlib import sha1

    real = os.path.realpath(repo)
    return str(sha1(real.encode(errors="surrogateescape")).hexdigest()[:16])


def _index_path(state_dir: StrPath, repo: str) -> str:
    return os.path.join(state_dir, INDEX_DIR, f"{repo_key(repo)}.json")


def index_file(state_dir: Path, repo: str) -> Path:
    from pathlib import Path

    return Path(_index_path(state_dir, repo))


def build_index(
    repo: str,
    agents: Mapping[str, Mapping[str, Any]],
    files: Mapping[str, list[str]],
    default: str = DEFAULT_MODE,
    profiles: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The document :func:`write_index` stores: ``agents`` by id (name, branch, worktree,
    profile, guard), ``files`` (relative to the repository root) -> agent ids."""
    return {
        "v": INDEX_VERSION,
        "repo": os.path.realpath(repo),
        "default": default,
        "profiles": dict(sorted((profiles or {}).items())),
        "agents": {k: dict(v) for k, v in sorted(agents.items())},
        "files": {f: sorted(ids) for f, ids in sorted(files.items()) if ids},
    }


def write_index(state_dir: Path, doc: dict[str, Any]) -> bool:
    """Store a repository's index atomically when it changed; True when written.

    Also keeps the ``answer/<event>`` markers: the fast hook starts Python for an edit only
    while some index names a file another agent could collide with.
    """
    from mullui.files import atomic_write_json

    path = index_file(state_dir, str(doc["repo"]))
    old = read_index(path)
    answers = state_dir / ANSWER_DIR
    if old == doc and all((answers / f"{aid}.info").exists() for aid in doc["agents"]):
        return False
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write_json(path, doc)
    _write_filters(state_dir, doc)
    write_answers(state_dir, doc, old)
    _update_markers(state_dir)
    return True


def _write_filters(state_dir: Path, doc: dict[str, Any]) -> None:
    """``answer/<event>.<agent>``: the files other agents of its repository changed, one
    line each as they appear in a JSON payload.  The fast hook starts Python for an edit
    only when the payload holds one of them (``grep -F``): an edit of a file nobody else
    changed costs no Python start.  A superset is harmless (Python then decides)."""
    import json

    files: dict[str, list[str]] = doc["files"]
    marker_dir = state_dir / ANSWER_DIR
    marker_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    forms = {f: {json.dumps(f, ensure_ascii=False)[1:-1], json.dumps(f)[1:-1]} for f in files}
    every = sorted(set().union(*forms.values()))
    sole: dict[str, set[str]] = {}  # agent -> the forms of the files only it changed
    for f, ids in files.items():
        if len(set(ids)) == 1:
            sole.setdefault(ids[0], set()).update(forms[f])
    for aid, info in doc["agents"].items():
        mine = sole.get(aid, set())
        data = "".join(f"{line}\n" for line in every if line not in mine).encode()
        for event in _events_of(info):
            _replace(marker_dir / f"{event}.{aid}", data)


def _events_of(info: Mapping[str, Any]) -> tuple[str, ...]:
    """The edit hook events the agent's CLI sends (its profile's ``guard_event``, which
    the radar puts in the index as ``event``: None, it sends none); without that field,
    every event (it might send any)."""
    if "event" not in info:
        return tuple(EDIT_TOOLS)
    event = info["event"]
    return (event,) if event in EDIT_TOOLS else ()


def _replace(path: Path, data: bytes) -> None:
    """Write one of the hook's derived files when its content changed: atomically, not
    durably (the radar rebuilds them; a reader never sees half of one)."""
    from mullui.files import atomic_write

    try:
        with open(path, "rb") as f:
            if f.read(len(data) + 1) == data:
                return
    except OSError:
        pass
    atomic_write(path, data, durable=False)


def _plain(text: str) -> bool:
    """Text the fast hook compares as bytes: nothing a JSON encoder escapes (a quote, a
    backslash, a control character) - a payload naming it holds it verbatim."""
    return bool(text) and not any(c in '"\\' or c < " " for c in text)


def _row(path: str, d: Decision | None, event: str) -> str:
    """One table line: TAB path TAB "ids" TAB answer TAB guard-event payload (``"-"``: only
    the asking agent changed it, no answer).  The ids are quoted so a path (which holds no
    quote) can never match them."""
    if d is None:
        return f'\t{path}\t"-"\n'
    ids = " ".join(o.id for o in d.others)
    return f'\t{path}\t"{ids}"\t{ANSWERS[event](d)}\t{dumps({"events": events_for(d)})}\n'


def _agent_answers(
    doc: Mapping[str, Any], key: str, aid: str, info: Mapping[str, Any]
) -> dict[str, str]:
    """``ID.info`` and the agent's own tables (none when its worktree is not plain: the
    hook then asks Python)."""
    mode = mode_for(doc, info.get("profile"), info.get("guard"))
    wt = str(info.get("worktree") or "")
    if not (os.path.isabs(wt) and _plain(wt)):
        return {}
    norm, real = os.path.normpath(wt), os.path.realpath(wt)
    if norm == "/" or not _plain(real):
        return {}
    out = {f"{aid}.info": f"{mode}\t{key}\t{norm}\t{real}\n"}
    if mode != "off":
        own = [f for f, ids in doc["files"].items() if aid in ids and _plain(f)]
        for event in _events_of(info):
            out[f"{event}.{aid}.tab"] = "".join(
                _row(f, decide(doc, aid, f, mode), event) for f in own
            )
    return out


def _shared_table(doc: Mapping[str, Any], event: str, mode: str) -> str:
    return "".join(_row(f, decide(doc, "", f, mode), event) for f in doc["files"] if _plain(f))


def admit(
    state_dir: Path,
    agent_id: str,
    repo: str,
    worktree: str,
    profile: str,
    guard: str | None,
    event: str | None,
) -> None:
    """An agent about to start (spawn, resume): its answer files from its repository's
    current index, so its edits get the fast answer before the radar's next pass names
    it.  Nothing when the repository has no index (nothing to guard yet)."""
    doc = read_index(_index_path(state_dir, repo))
    if doc is None:
        return
    known = doc["agents"].get(agent_id)
    info = {**(known if isinstance(known, dict) else {}), "profile": profile, "guard": guard,
            "worktree": worktree, "event": event}  # fmt: skip
    key = repo_key(repo)
    adir = state_dir / ANSWER_DIR
    adir.mkdir(parents=True, exist_ok=True, mode=0o700)
    want = _agent_answers(doc, key, agent_id, info)
    mode = mode_for(doc, profile, guard)
    for event in _events_of(info) if mode != "off" else ():
        shared = adir / f"{event}.{mode}.{key}.tab"
        if not shared.exists():
            want[shared.name] = _shared_table(doc, event, mode)
    for name, text in want.items():
        _replace(adir / name, text.encode(errors="surrogateescape"))


def write_answers(state_dir: Path, doc: dict[str, Any], old: dict[str, Any] | None) -> None:
    """The guard's answers precomputed for the fast hook (``fasthook/spool.sh``), so an
    edit the guard acts on costs no Python start.  In ``answer/``:

    - ``ID.info``: the agent's mode, repository key, worktree (as recorded and real);
    - ``EVENT.spec``: how the event's payload names the tool and the file;
    - ``EVENT.MODE.KEY.tab``: for every file of the repository some agent changed, the
      answer with all of them named (what any agent that did not change it gets);
    - ``EVENT.ID.tab``: for the files the agent itself changed, the answer with only the
      others named, or none.

    The hook uses them only when the payload is plain (see :func:`_plain`), the path is in
    the worktree as recorded, and every agent named is still live (a record and no
    ``guard/gone/ID``); otherwise it asks :func:`hook_answer`, which decides the same
    from the index.  Files are rewritten only when their content changes."""
    adir = state_dir / ANSWER_DIR
    adir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = repo_key(str(doc["repo"]))
    want: dict[str, str] = {}
    for event, (tool_field, tools) in EDIT_TOOLS.items():
        keys = " ".join(sorted(set(tools.values())))
        pairs = " ".join(f"{t}={k}" for t, k in sorted(tools.items()))
        want[f"{event}.spec"] = f"{tool_field}\t{keys}\t{pairs}\n"
    # shared tables for every mode the repository's config names (an agent spawned before
    # the radar's next pass finds its own) and every mode an agent has
    modes = {m for m in (doc.get("default"), *dict(doc.get("profiles") or {}).values())}
    for aid, info in doc["agents"].items():
        want.update(_agent_answers(doc, key, aid, info))
        modes.add(mode_for(doc, info.get("profile"), info.get("guard")))
    for mode in modes & {"warn", "ask", "block"}:
        for event in EDIT_TOOLS:
            want[f"{event}.{mode}.{key}.tab"] = _shared_table(doc, event, mode)
    for name, text in want.items():
        _replace(adir / name, text.encode(errors="surrogateescape"))
    # what this repository no longer needs: its shared tables of modes now unused, the
    # info and tables of agents that left its index (an agent admitted since the last
    # pass keeps its own)
    gone = set((old or {}).get("agents") or {}) - set(doc["agents"])
    stale = [f"{aid}.info" for aid in gone]
    stale += [f"{event}.{aid}.tab" for aid in set(doc["agents"]) | gone for event in EDIT_TOOLS]
    try:
        stale += [e.name for e in os.scandir(adir) if e.name.endswith(f".{key}.tab")]
    except OSError:
        pass
    for name in stale:
        if name not in want:
            try:
                os.unlink(adir / name)
            except FileNotFoundError:
                pass


def read_index(path: StrPath) -> dict[str, Any] | None:
    """The index at ``path``; None when missing, torn or not ours (the radar rewrites it)."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_INDEX_BYTES + 1)
    except OSError:
        return None
    if len(data) > MAX_INDEX_BYTES:
        return None
    try:
        doc = loads(data)
    except ValueError:
        return None
    ok = isinstance(doc, dict) and doc.get("v") == INDEX_VERSION
    ok = ok and isinstance(doc.get("agents"), dict) and isinstance(doc.get("files"), dict)
    return doc if ok else None


def _update_markers(state_dir: Path) -> None:
    """``answer/<event>`` exists while any index has a file and a mode other than off."""
    armed = False
    try:
        entries = list(os.scandir(state_dir / INDEX_DIR))
    except OSError:
        entries = []
    for entry in entries:
        if not entry.name.endswith(".json"):
            continue
        doc = read_index(entry.path)
        if doc and doc["files"] and _any_mode_on(doc):
            armed = True
            break
    marker_dir = state_dir / ANSWER_DIR
    for event in EDIT_HOOKS:
        marker = marker_dir / event
        if armed and not marker.exists():
            marker_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            marker.touch()
        elif not armed:
            marker.unlink(missing_ok=True)


def _any_mode_on(doc: Mapping[str, Any]) -> bool:
    modes = {doc.get("default"), *dict(doc.get("profiles") or {}).values()}
    modes |= {a.get("guard") for a in doc["agents"].values() if isinstance(a, dict)}
    return bool(modes & {"warn", "ask", "block"})


# ---- the decision (pure) -------------------------------------------------------------------
def relative(path: str, cwd: str | None, worktree: str) -> str | None:
    """``path`` (absolute, relative to ``cwd``, ``./x``, through a symlinked directory)
    relative to ``worktree``'s root, or None when it lies outside the worktree."""
    if not path or "\0" in path:
        return None
    if not os.path.isabs(path):
        path = os.path.join(cwd or worktree, path)
    path = os.path.normpath(path)
    wt = os.path.normpath(worktree)
    for base, p in ((wt, path), (os.path.realpath(wt), os.path.realpath(path))):
        if p == base:
            return None
        if p.startswith(base.rstrip("/") + "/"):
            rel = p[len(base.rstrip("/")) + 1 :]
            return None if rel == ".git" or rel.startswith(".git/") else rel
    return None


def mode_for(doc: Mapping[str, Any], profile: str | None, override: str | None) -> str:
    """``spawn --guard`` > ``[profiles.P] guard`` > ``[collisions] guard``."""
    for m in (override, dict(doc.get("profiles") or {}).get(profile or ""), doc.get("default")):
        if isinstance(m, str) and m in MODES:
            return m
    return DEFAULT_MODE


def decide(
    doc: Mapping[str, Any],
    agent_id: str,
    rel: str,
    mode: str,
    gone: Callable[[str], bool] = lambda _id: False,
) -> Decision | None:
    """What to do when ``agent_id`` is about to edit ``rel``: None lets it go silently.

    Only *other* agents listed for the file count (an agent's own earlier changes never
    do), and only those the index still lists as agents (``gone``: a record now says merged
    or removed, since the index was written).
    """
    if mode not in ("warn", "ask", "block"):
        return None
    agents = doc.get("agents") or {}
    ids = (doc.get("files") or {}).get(rel) or ()
    others: list[Other] = []
    for other in ids:
        info = agents.get(other)
        if other == agent_id or not isinstance(info, dict) or gone(other):
            continue
        others.append(Other(str(other), str(info.get("name") or other), str(info.get("branch"))))
    if not others:
        return None
    return Decision(mode, agent_id, rel, tuple(others))


# ---- the hook --------------------------------------------------------------------------------
def _read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as f:
            doc = loads(f.read(MAX_INDEX_BYTES))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _record(state_dir: StrPath, agent_id: str) -> dict[str, Any] | None:
    return _read_json(os.path.join(state_dir, "agents", f"{agent_id}.json"))


GONE_DIR = "gone"


def mark_gone(state_dir: StrPath, agent_id: str, gone: bool = True) -> None:
    """``guard/gone/ID`` exists once the agent's work is merged or removed (made before the
    record says so, and kept until the record itself is gone): the fast hook, which reads
    no record, hands an answer naming that agent to Python (:func:`_gone` decides)."""
    path = os.path.join(state_dir, INDEX_DIR, GONE_DIR, agent_id)
    if not gone:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        return
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))


def _gone(state_dir: StrPath) -> Callable[[str], bool]:
    def gone(other: str) -> bool:
        # No record: its finished work was moved to the history (mullui.ledger).
        rec = _record(state_dir, other)
        return rec is None or bool(rec.get("removed")) or bool(rec.get("merged_into"))

    return gone


def check(state_dir: StrPath, agent_id: str, path: str, cwd: str | None = None) -> Decision | None:
    """The guard's decision for ``agent_id`` about to edit ``path`` (profile-agnostic: the
    Gemini / OpenCode hooks call this too).  Reads the agent's record and its repository's
    index; None when the guard has nothing to say."""
    rec = _record(state_dir, agent_id)
    if rec is None or rec.get("host") or not rec.get("repo") or not rec.get("worktree"):
        return None
    doc = read_index(_index_path(state_dir, str(rec["repo"])))
    if doc is None or not doc["files"]:
        return None
    extra = rec.get("extra")
    extra = extra if isinstance(extra, dict) else {}
    override = extra.get("guard") if isinstance(extra.get("guard"), str) else None
    mode = mode_for(doc, str(rec.get("profile") or ""), override)
    if mode == "off":
        return None
    rel = relative(path, cwd, str(rec["worktree"]))
    if rel is None or rel not in doc["files"]:
        return None
    return decide(doc, agent_id, rel, mode, _gone(state_dir))


def edit_target(event: str, payload: Mapping[str, Any]) -> tuple[str, str | None] | None:
    """(path, cwd) of the file an edit hook is about to change, or None."""
    how = EDIT_HOOKS.get(event)
    return how(payload) if how is not None else None


def _tool_target(
    p: Mapping[str, Any], tools: Mapping[str, str], tool_field: str, input_field: str
) -> tuple[str, str | None] | None:
    """(path, cwd) when ``p[tool_field]`` is one of ``tools`` (tool -> the key of the path
    in ``p[input_field]``)."""
    key = tools.get(str(p.get(tool_field) or ""))
    inp = p.get(input_field)
    if key is None or not isinstance(inp, dict) or not isinstance(inp.get(key), str):
        return None
    cwd = p.get("cwd")
    return str(inp[key]), cwd if isinstance(cwd, str) else None


def _claude_target(p: Mapping[str, Any]) -> tuple[str, str | None] | None:
    return _tool_target(p, CLAUDE_EDIT_TOOLS, "tool_name", "tool_input")


def _claude_answer(d: Decision) -> str:
    """Claude Code's PreToolUse answer (2.1.197): ``deny`` + reason reaches the model as
    the tool's error result; ``ask`` opens the CLI's permission dialog (even in
    acceptEdits mode); ``additionalContext`` is given to the model with the tool result."""
    out: dict[str, Any] = {"hookEventName": "PreToolUse"}
    if d.mode == "block":
        out.update(permissionDecision="deny", permissionDecisionReason=d.reason())
    elif d.mode == "ask":
        out.update(permissionDecision="ask", permissionDecisionReason=d.reason())
    else:
        out["additionalContext"] = d.reason()
    doc: dict[str, Any] = {"hookSpecificOutput": out}
    if d.mode == "warn":
        doc["systemMessage"] = f"collision: {d.path} is also changed by {d.names()}"
    return dumps(doc)


def _gemini_target(p: Mapping[str, Any]) -> tuple[str, str | None] | None:
    return _tool_target(p, GEMINI_EDIT_TOOLS, "tool_name", "tool_input")


def _gemini_answer(d: Decision) -> str:
    """Gemini CLI's BeforeTool answer: ``decision: "deny"`` + ``reason`` goes to the model
    as the tool's error; ``"ask"`` makes the CLI confirm the call with the human;
    ``systemMessage`` is shown to the human.  A BeforeTool hook cannot add context for
    the model, so ``warn`` tells the human (and the inbox) only."""
    doc: dict[str, Any] = {"systemMessage": f"collision: {d.path} is also changed by {d.names()}"}
    if d.mode in ("block", "ask"):
        doc.update(decision="deny" if d.mode == "block" else "ask", reason=d.reason())
    return dumps(doc)


def _opencode_target(p: Mapping[str, Any]) -> tuple[str, str | None] | None:
    return _tool_target(p, OPENCODE_EDIT_TOOLS, "tool", "args")


def _opencode_answer(d: Decision) -> str:
    """What mullui's OpenCode plugin reads: for ``block`` it throws an Error with ``reason``
    in ``tool.execute.before`` (OpenCode 1.18.33's ``Plugin.trigger`` awaits each hook and a
    rejection fails the tool call: the model gets the message as the tool's error); ``warn``
    and ``ask`` let the call go (``ask``: when OpenCode's edit permission is ``ask`` its own
    dialog asks the human while the guard's event has the agent ``blocked`` on
    ``collision:PATH``; with edits allowed no plugin hook can hold the edit, so the plugin
    reports it went ahead unasked and the human gets the ``warn`` item, docs/agents.md)."""
    return dumps({"decision": d.mode, "reason": d.reason(), "path": d.path, "others": d.names()})


#: Hook event -> (the payload's field naming the tool, tool -> the key naming its file):
#: what the fast hook greps for (see :func:`write_answers`).
EDIT_TOOLS: dict[str, tuple[str, Mapping[str, str]]] = {
    "PreToolUse": ("tool_name", CLAUDE_EDIT_TOOLS),
    "BeforeTool": ("tool_name", GEMINI_EDIT_TOOLS),
    OPENCODE_EVENT: ("tool", OPENCODE_EDIT_TOOLS),
}
#: Hook event -> how its payload names the file about to be edited.
EDIT_HOOKS: dict[str, Callable[[Mapping[str, Any]], tuple[str, str | None] | None]] = {
    "PreToolUse": _claude_target,
    "BeforeTool": _gemini_target,
    OPENCODE_EVENT: _opencode_target,
}
#: Hook event -> the answer text the CLI reads on the hook's stdout.
ANSWERS: dict[str, Callable[[Decision], str]] = {
    "PreToolUse": _claude_answer,
    "BeforeTool": _gemini_answer,
    OPENCODE_EVENT: _opencode_answer,
}


def events_for(d: Decision) -> list[dict[str, Any]]:
    """Normalized events recording what the guard did (see ``reducer``: kind ``guard``)."""
    first = d.others[0]
    evs: list[dict[str, Any]] = [
        {
            "kind": "guard",
            "action": d.mode,
            "file": d.path,
            "other": first.id,
            "other_name": first.name,
            "other_branch": first.branch,
            "others": [o.id for o in d.others],
        }
    ]
    if d.mode == "ask":
        evs.append(
            {
                "kind": "state",
                "state": "blocked",
                "cause": f"collision:{d.path}",
                "question": d.question(),
            }
        )
    return evs


def hook_answer(state_dir: StrPath, agent_id: str, event: str, payload: bytes) -> str | None:
    """The answer to an edit hook (None: no answer, the CLI goes on as usual).  Records
    what the guard did as one raw hook line of the agent (:func:`record`)."""
    if event not in EDIT_HOOKS:
        return None
    try:
        p = loads(payload)
    except ValueError:
        return None
    target = edit_target(event, p) if isinstance(p, dict) else None
    if target is None:
        return None
    d = check(state_dir, agent_id, *target)
    if d is None:
        return None
    record(state_dir, agent_id, events_for(d))
    return ANSWERS[event](d)


def record(state_dir: StrPath, agent_id: str, events: list[dict[str, Any]]) -> None:
    """Append what the guard did to the agent's raw spool as ``fasthook/spool.sh`` would:
    the payload (``{"events": [...]}``) in a new private file ``hookdata/ID.PID.N``, then
    one line ``1<TAB>guard<TAB>s<TAB>FILE<TAB>TOKEN`` with one ``write`` (O_APPEND).  The
    store checks the token and folds it (:func:`mullui.rawspool.normalize`), exactly once.
    The token: the agent's environment, else its secrets file (tmux-run hooks)."""
    token = os.environ.get("MULLUI_AGENT_TOKEN") or ""
    if not token:
        try:
            with open(os.path.join(state_dir, "secrets", agent_id), "rb") as f:
                token = f.readline(256).decode().strip()
        except (OSError, ValueError):
            token = ""
    body = dumps({"events": events}).encode()
    base = os.path.join(state_dir, "hookdata", f"{agent_id}.{os.getpid()}.")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    n = 0
    while True:  # spool.sh (this pid, exec'd into us) took .0 for the edit's own payload
        try:
            fd = os.open(f"{base}{n}", flags, 0o600)
            break
        except FileExistsError:
            n += 1
            if n > 10000:
                raise
        except FileNotFoundError:  # no hook has run yet (called in-process)
            os.makedirs(os.path.dirname(base), mode=0o700, exist_ok=True)
    try:
        os.write(fd, body)
    finally:
        os.close(fd)
    line = f"1\t{GUARD_EVENT}\ts\t{agent_id}.{os.getpid()}.{n}\t{token}\n".encode()
    spool = os.path.join(state_dir, "spool", f"{agent_id}.hooks")
    os.makedirs(os.path.dirname(spool), mode=0o700, exist_ok=True)
    fd = os.open(spool, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def raw_events(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The events a ``guard`` raw line may carry (what :func:`events_for` makes), checked:
    anything else in it is dropped (the line has the agent's token, as any hook line)."""
    out: list[dict[str, Any]] = []
    evs = payload.get("events")
    for ev in evs if isinstance(evs, list) else ():
        if not isinstance(ev, dict):
            continue
        kind = ev.get("kind")
        if kind == "guard" and ev.get("action") in MODES and isinstance(ev.get("file"), str):
            keys = ("action", "file", "other", "other_name", "other_branch", "others")
            out.append({"kind": "guard", **{k: ev[k] for k in keys if k in ev}})
        elif (
            kind == "state"
            and ev.get("state") == "blocked"
            and str(ev.get("cause") or "").startswith("collision:")
        ):
            q = ev.get("question")
            out.append({"kind": "state", "state": "blocked", "cause": str(ev["cause"]),
                        "question": q if isinstance(q, str) else None})  # fmt: skip
    return out


# ---- an edit held for the human (OpenCode's plugin waits on a decision file) -----------------
#: ``<state>/answer/decisions/``: the plugin writes ``ID.CALL.wait`` while it holds agent
#: ``ID``'s edit ``CALL`` (OpenCode awaits its hook), and waits for ``ID.CALL.answer``,
#: which ``mullui send`` writes (JSON ``{"allow": bool, "said": str | null}``).
DECISIONS_DIR = "decisions"
#: How long a held edit waits for the human before the plugin refuses it (seconds).
HOLD_S = 30 * 60
_YES = ("y", "yes")
_NO = ("n", "no")


def decisions_dir(state_dir: StrPath) -> str:
    return os.path.join(state_dir, ANSWER_DIR, DECISIONS_DIR)


def held_calls(state_dir: StrPath, agent_id: str) -> list[str]:
    """The calls of agent ``agent_id`` whose edit is held for the human now (oldest
    first; normally one)."""
    d = decisions_dir(state_dir)
    try:
        names = os.listdir(d)
    except OSError:
        return []
    prefix = agent_id + "."
    held = [n for n in names if n.startswith(prefix) and n.endswith(".wait")]
    held.sort(key=lambda n: _mtime(os.path.join(d, n)))
    return [n[len(prefix) : -len(".wait")] for n in held]


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


def decide_held(state_dir: StrPath, agent_id: str, call: str, text: str) -> bool:
    """Write the human's ``text`` for the held edit ``call``: ``y`` allows it, ``n``
    refuses it with the guard's reason, any other text refuses it and reaches the model
    as what the human said.  Private (0600), atomic.  Returns whether it allows."""
    from pathlib import Path

    from mullui.files import atomic_write

    said = text.strip()
    allow = said.lower() in _YES
    doc = {"allow": allow, "said": None if allow or said.lower() in _NO else said}
    path = os.path.join(decisions_dir(state_dir), f"{agent_id}.{call}.answer")
    atomic_write(Path(path), dumps(doc).encode())
    return allow
