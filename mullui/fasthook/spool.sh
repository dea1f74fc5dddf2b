# mullui's hook for events that need no answer (POSIX sh; no Python starts).
#
#   sh spool.sh [--answer PYTHON] [--agent ID --state-dir DIR] EVENT [ARG...]
#
# It stores the raw event and returns: the payload (stdin, or the ARGs when there are
# any) goes to a private file, then one short line "1<TAB>EVENT<TAB>s|a<TAB>FILE<TAB>TOKEN"
# is appended to the agent's raw spool (spool/ID.hooks) with one write.  The token check,
# the profile's translation and the fold into the record happen in mullui (the supervisor,
# or any reader catching up): a forged or malformed line is refused and logged there.
#
# The agent id, state dir and token come from the environment mullui gives the agent's
# window; tmux's hooks (which run in the server's environment) pass --agent/--state-dir
# and the token is read from the agent's secrets file: it never appears in an argv.
#
# --answer PYTHON: an event the agent waits on and that may get an answer (the collision
# guard).  After storing the event, when $STATE_DIR/answer/EVENT exists (and, when
# answer/EVENT.ID exists, the payload holds one of its lines: grep -F), the payload is
# handed to answer.py (`PYTHON -S -I`), whose stdout is the answer; otherwise nothing
# more runs.
py=
if [ "${1-}" = --answer ]; then py=$2; shift 2; fi
id=${MULLUI_AGENT_ID-}
d=${MULLUI_STATE_DIR-}
tok=${MULLUI_AGENT_TOKEN-}
if [ "${1-}" = --agent ] && [ "${3-}" = --state-dir ]; then
  id=$2; d=$4; tok=; shift 4
fi
ev=${1-}
case $id in
  ''|*[!A-Za-z0-9_-]*)
    echo "mullui: hook $ev: no agent id (MULLUI_AGENT_ID): hooks are run by agents mullui started" >&2
    exit 1;;
esac
case $ev in
  ''|*[!A-Za-z0-9_:.-]*) echo "mullui: hook: bad event name for agent $id" >&2; exit 1;;
esac
case $d in
  /*) ;;
  *) echo "mullui: hook $ev for agent $id: no state dir (MULLUI_STATE_DIR)" >&2; exit 1;;
esac
if [ -z "$tok" ]; then IFS= read -r tok 2>/dev/null < "$d/secrets/$id"; fi
umask 077
f=$d/hookdata/$id.$$
n=0
while [ -e "$f.$n" ] || [ -h "$f.$n" ]; do n=$((n + 1)); done
f=$f.$n
set -C  # the payload file is new: never written through something already there
if [ $# -gt 1 ]; then
  shift
  k=a
  printf '%s\0' "$@" > "$f" || exit 1
else
  k=s
  case $ev in
    pane-died|silence|activity) : > "$f" || exit 1;;  # tmux's: nothing on stdin
    *) if [ -t 0 ]; then : > "$f" || exit 1; else cat > "$f" || exit 1; fi;;
  esac
fi
set +C
# val '"key" : "value"': v=value (a line grep -o found: no quote inside the value)
val() {
  v=${1#*:}
  while :; do case $v in ' '*) v=${v# };; *) break;; esac; done
  v=${v#\"}; v=${v%\"}
}
ans=
if [ -n "$py" ] && [ -e "$d/answer/$ev" ]; then
  # answer/EVENT.ID, when there, holds fixed strings one of which the payload must hold
  # for anything more to run (the collision guard's: the files other agents changed).
  flt=$d/answer/$ev.$id
  if [ ! -e "$flt" ] || grep -qF -f "$flt" "$f" 2>/dev/null; then
    ans=py
    # The answer precomputed with the radar's index (mullui.guard.write_answers): no
    # Python when the payload names one plain path in the worktree and every agent the
    # answer names is still live; any doubt (an escape, an unusual path form, a torn or
    # missing table, an agent merged or removed since, this agent's own record gone: it
    # was moved to the history) leaves the decision to answer.py.
    a=$d/answer
    if [ -e "$d/agents/$id.json" ] \
      && IFS='	' read -r gmode grk gwt gwtr < "$a/$id.info" 2>/dev/null; then
      nl='
'
      case $gmode in
        off) ans=;;
        warn|ask|block)
          if IFS='	' read -r tf keys tools < "$a/$ev.spec" 2>/dev/null \
            && [ -r "$a/$ev.$id.tab" ] && [ -r "$a/$ev.$gmode.$grk.tab" ]; then
            set -f
            set -- -e "\"$tf\" *: *\"[^\"]*\"" -e '"cwd" *: *"[^"]*"'
            for kk in $keys; do set -- "$@" -e "\"$kk\" *: *\"[^\"]*\""; done
            got=$(LC_ALL=C grep -a -o "$@" "$f" 2>/dev/null)
            tool= ntool=0 cwd=$gwt ncwd=0
            IFS=$nl
            for l in $got; do
              case $l in
                "\"$tf\""*) val "$l"; tool=$v; ntool=$((ntool + 1));;
                '"cwd"'*) val "$l"; cwd=$v; ncwd=$((ncwd + 1));;
              esac
            done
            case $tool in *\\*) ntool=0;; esac  # escaped: Python reads it
            key=
            IFS=' '
            for t in $tools; do [ "${t%%=*}" = "$tool" ] && key=${t#*=}; done
            if [ "$ntool" = 1 ] && [ -z "$key" ]; then
              ans=  # not a tool that edits a file: nothing to say
            elif [ "$ntool" = 1 ] && [ "$ncwd" -le 1 ]; then
              p= np=0
              IFS=$nl
              for l in $got; do
                case $l in "\"$key\""*) val "$l"; p=$v; np=$((np + 1));; esac
              done
              case $p in
                /*) ;;
                ?*) while :; do case $p in ./*) p=${p#./};; *) break;; esac; done
                    p=$cwd/$p;;
              esac
              case $np$p in
                1/*[\\]*|1*//*|1*/./*|1*/../*|1*/.|1*/..|1*/) ;;  # Python normalises these
                1"$gwt"/*)
                  rel=${p#"$gwt"/}
                  case $rel in
                    .git|.git/*) ans=;;
                    *)
                      row=$(LC_ALL=C grep -a -h -m1 -F -e "	$rel	" "$a/$ev.$id.tab" \
                        "$a/$ev.$gmode.$grk.tab" 2>/dev/null)
                      case $? in
                        1) ans=;;  # no other agent changed it
                        0)
                          IFS='	'
                          set -- ${row%%"$nl"*}
                          ids=${2#\"}; ids=${ids%\"}
                          if [ "$#" = 2 ] && [ "$ids" = - ]; then
                            ans=  # only this agent changed it
                          elif [ "$#" = 4 ]; then
                            ans=sh gans=$3 gevs=$4
                            IFS=' '
                            for o in $ids; do
                              if [ ! -e "$d/agents/$o.json" ] || [ -e "$d/guard/gone/$o" ]; then
                                ans=py
                              fi
                            done
                          fi;;
                      esac;;
                  esac;;
              esac
            fi
            set +f
            unset IFS
          fi;;
      esac
    fi
    [ "$ans" = py ] && exec 3< "$f"  # opened before the line exists: a reader deletes the file once it is in
  fi
fi
printf '1\t%s\t%s\t%s\t%s\n' "$ev" "$k" "${f##*/}" "$tok" >> "$d/spool/$id.hooks" || exit 1
# A supervisor must read it: when the pid in supervisor.lock is alive and no zombie
# (builtins only, no exec) one runs; else, with the lock taken on fd 9,
# supervisor-start.sh (written by mullui's commands while autostart is on) starts
# `mullui watch`, which inherits the lock.
p=; up=
IFS= read -r p 2>/dev/null < "$d/supervisor.lock"
if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
  up=1; st=
  [ -r "/proc/$p/stat" ] && IFS=' ' read -r _ _ st _ 2>/dev/null < "/proc/$p/stat"
  [ "$st" = Z ] && up=
fi
if [ -z "$up" ] && [ -r "$d/supervisor-start.sh" ] && command -v flock >/dev/null 2>&1; then
  exec 9>>"$d/supervisor.lock"
  if flock -n 9; then  # its own session: the agent's process group is not its own
    s=; command -v setsid >/dev/null 2>&1 && s=setsid
    $s sh "$d/supervisor-start.sh" 9 </dev/null >>"$d/watch.log" 2>&1 3<&- &
    printf '%s' "$!" > "$d/supervisor.lock"  # its pid (the watch execs in that process)
  fi
  exec 9>&-
fi
if [ "$ans" = sh ]; then
  # what the guard did, as mullui.guard.record writes it: a payload file, then one line
  g=$d/hookdata/$id.$$
  n=0
  while [ -e "$g.$n" ] || [ -h "$g.$n" ]; do n=$((n + 1)); done
  set -C
  if printf '%s' "$gevs" > "$g.$n"; then
    printf '1\tguard\ts\t%s\t%s\n' "${g##*/}.$n" "$tok" >> "$d/spool/$id.hooks"
  fi
  set +C
  printf '%s' "$gans"
elif [ "$ans" = py ]; then
  exec "$py" -S -I "${0%/*}/answer.py" "$d" "$id" "$ev" <&3 3<&-
fi
exit 0
