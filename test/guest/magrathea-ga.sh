#!/bin/sh
# The reference guest agent for minimal images (busybox): a subset of the qemu-guest-agent
# protocol on the virtio-serial port named org.qemu.guest_agent.0, enough for everything
# magrathead asks of a guest, so a stock qemu-ga can take its place in a full image:
#
#   guest-sync, guest-sync-delimited  {"arguments":{"id":N}} -> N (delimited: 0xFF first)
#   guest-ping                        -> {}
#   guest-info                        -> {"version":..., "supported_commands":[...]}
#   guest-exec                        {"path":"/bin/sh","input-data":BASE64,...} -> {"pid":P}
#                                     (the script is fed to sh on its standard input, as qemu-ga
#                                     does; only /bin/sh is run, anything else is refused)
#   guest-exec-status                 {"pid":P} -> {"exited":false} or
#                                     {"exited":true,"exitcode":C,"out-data":BASE64}
#
# Requests are one JSON object a line. Nothing here trusts the host further than the fields
# above; an unknown command gets a CommandNotFound error like qemu-ga's. Output of a command is
# capped at 16 KiB. The agent exempts itself from the guest's OOM killer: it is what takes the
# guest out of memory trouble.
PATH=/bin
export PATH
port=
for p in /sys/class/virtio-ports/*; do
  [ "$(cat "$p/name" 2>/dev/null)" = org.qemu.guest_agent.0 ] && port=/dev/${p##*/}
done
[ -n "$port" ] || { echo "magrathea-ga: no org.qemu.guest_agent.0 port" >&2; exit 0; }
echo -1000 > /proc/self/oom_score_adj 2>/dev/null
runs=/run/magrathea-ga
mkdir -p "$runs"
echo $$ > "$runs/pid"
n=0 # number of the next command run

field() { # field NAME LINE: a string or number value of NAME in LINE
  printf '%s' "$2" | sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\{0,1\}\([A-Za-z0-9+/=._-]*\).*/\1/p"
}

exec 3<>"$port"
while true; do
  if ! IFS= read -r line <&3; then
    sleep 0.2 # no host on the other end yet (or it went away)
    continue
  fi
  cmd=$(field execute "$line")
  case "$cmd" in
    guest-sync | guest-sync-delimited)
      id=$(field id "$line")
      case "$id" in '' | *[!0-9-]*) id=0 ;; esac
      [ "$cmd" = guest-sync-delimited ] && printf '\377' >&3
      printf '{"return": %s}\n' "$id" >&3
      ;;
    guest-ping) printf '{"return": {}}\n' >&3 ;;
    guest-info)
      printf '{"return": {"version": "magrathea-ga 1", "supported_commands": [%s]}}\n' \
        '{"name":"guest-sync","enabled":true},{"name":"guest-ping","enabled":true},{"name":"guest-exec","enabled":true},{"name":"guest-exec-status","enabled":true}' >&3
      ;;
    guest-exec)
      path=$(field path "$line")
      data=$(field input-data "$line")
      if [ "$path" != /bin/sh ]; then
        printf '{"error": {"class": "GenericError", "desc": "this agent runs only /bin/sh"}}\n' >&3
        continue
      fi
      (
        printf '%s' "$data" | base64 -d > "$runs/$$.in.$n" 2>/dev/null
        /bin/sh -s < "$runs/$$.in.$n" > "$runs/$$.out.$n" 2>&1
        echo $? > "$runs/$$.rc.$n"
      ) &
      pid=$!
      echo "$n" > "$runs/job.$pid"
      n=$((n + 1))
      printf '{"return": {"pid": %s}}\n' "$pid" >&3
      ;;
    guest-exec-status)
      pid=$(field pid "$line")
      case "$pid" in '' | *[!0-9]*) pid=none ;; esac
      if [ ! -f "$runs/job.$pid" ]; then
        printf '{"error": {"class": "GenericError", "desc": "no such process"}}\n' >&3
        continue
      fi
      k=$(cat "$runs/job.$pid")
      if [ -f "$runs/$$.rc.$k" ]; then
        rc=$(cat "$runs/$$.rc.$k")
        out=$(head -c 16384 "$runs/$$.out.$k" | base64 | tr -d '\n')
        rm -f "$runs/job.$pid" "$runs/$$.rc.$k" "$runs/$$.out.$k" "$runs/$$.in.$k"
        printf '{"return": {"exited": true, "exitcode": %s, "out-data": "%s"}}\n' "${rc:-1}" "$out" >&3
      else
        printf '{"return": {"exited": false}}\n' >&3
      fi
      ;;
    '') ;; # not a request (a 0xFF reset byte, a blank line)
    *) printf '{"error": {"class": "CommandNotFound", "desc": "The command %s has not been found"}}\n' "$cmd" >&3 ;;
  esac
done
