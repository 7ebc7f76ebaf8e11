#!/usr/bin/env bash
# Stop the Ceph test cluster started by scripts/services-up.sh (radosgw, then
# OSD, then monitor) and wipe its state dir, and stop the dockerd that
# services-up.sh started (by its pid file; an engine it did not start is left
# alone), then remove what dockerd leaves on the host: the docker0 and br-*
# bridges, its iptables chains and rules, and ip_forward goes back to what it
# was before. Images stay in /var/lib/docker (the next services-up.sh reuses
# them; --purge-images removes them). Idempotent.
# The cluster is throwaway (memstore = RAM), so daemons get SIGKILL by default
# (instant); MQ_CEPH_GRACEFUL=1 sends SIGTERM first (~2 s per daemon).
#
# RabbitMQ is normally pre-started on the machine and is left running, unless
# --with-rabbitmq (or MQ_STOP_RABBITMQ=1) is given.
#
# Env: MQ_CEPH_DIR (default /tmp/mq-ceph), MQ_CEPH_KEEP=1 keeps the state dir
# (logs) for inspection; services-up.sh recreates the cluster anyway.
# MQ_SKIP_CEPH=1 / MQ_SKIP_CONTAINERS=1 leave Ceph / dockerd alone;
# MQ_DOCKERD_STATE as for services-up.sh.
set -euo pipefail

MQ_CEPH_DIR="${MQ_CEPH_DIR:-/tmp/mq-ceph}"
MARKER="${MQ_CEPH_DIR}/.mq-ceph-state"
STOP_RABBIT="${MQ_STOP_RABBITMQ:-0}"
PURGE_IMAGES=0
for a in "$@"; do
  case "$a" in
    --with-rabbitmq) STOP_RABBIT=1 ;;
    --purge-images) PURGE_IMAGES=1 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "unknown argument: $a" >&2; exit 2 ;;
  esac
done

log() { printf '[services-down] %s\n' "$*" >&2; }

# alive <pid>: running and not a zombie (PID 1 here may reap late, and kill -0
# succeeds on zombies)
alive() {
  local st
  st="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
  [[ -n "$st" && "$st" != Z* ]]
}

# stop <pidfile> <name> <fallback pgrep pattern>: SIGKILL (or SIGTERM, wait up
# to 15 s, then SIGKILL when MQ_CEPH_GRACEFUL=1); waits until the pids are gone.
stop_daemon() {
  local pf="$1" name="$2" pattern="$3" pids=""
  [[ -f "$pf" ]] && pids="$(cat "$pf" 2>/dev/null || true)"
  # fallback when the pid file is gone: our daemons carry our ceph.conf path
  # on their command line, so this never matches an unrelated ceph.
  if [[ -z "$pids" ]] || ! alive "$pids"; then
    pids="$(pgrep -f -- "$pattern" || true)"
  fi
  pids="$(for p in $pids; do alive "$p" && echo "$p"; done)"
  if [[ -z "$pids" ]]; then rm -f "$pf"; return 0; fi
  log "stopping ${name} (pid $(echo $pids))"
  local sig=KILL grace=5
  [[ "${MQ_CEPH_GRACEFUL:-0}" == 1 ]] && sig=TERM grace=15
  kill -"$sig" $pids 2>/dev/null || true
  local deadline=$((SECONDS + grace)) p any=0
  while ((SECONDS < deadline)); do
    any=0
    for p in $pids; do alive "$p" && any=1; done
    ((any)) || break
    sleep 0.1
  done
  for p in $pids; do
    if alive "$p"; then
      log "${name} (pid ${p}) did not exit, sending SIGKILL"
      kill -KILL "$p" 2>/dev/null || true
    fi
  done
  rm -f "$pf"
}

# ------------------------------------------------------------------ dockerd --
DOCKERD_STATE="${MQ_DOCKERD_STATE:-/var/lib/mq-dockerd}"
DOCKERD_PID="${DOCKERD_STATE}/dockerd.pid"

# remove_docker_host_state: what a stopped dockerd leaves behind (iptables
# chains and rules, bridges, ip_forward); only when no dockerd runs at all.
remove_docker_host_state() {
  local p
  for p in $(pgrep -x dockerd || true); do
    if alive "$p"; then
      log "a dockerd (pid ${p}) still runs: leaving bridges and iptables alone"
      return 1
    fi
  done
  local ipt table rule chain
  for ipt in iptables ip6tables; do
    command -v "$ipt" >/dev/null 2>&1 || continue
    for table in filter nat; do
      # rules in the built-in chains that jump to DOCKER* or name docker0/br-*
      "${ipt}-save" -t "$table" 2>/dev/null \
        | grep -E '^-A (INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING) ' \
        | grep -E -- '-j DOCKER|docker0|br-[0-9a-f]{12}' \
        | while read -r rule; do
            # shellcheck disable=SC2086 # the saved rule is split into iptables arguments
            eval "$ipt -t $table -D ${rule#-A }" 2>/dev/null || true
          done
      for chain in $("${ipt}-save" -t "$table" 2>/dev/null | sed -n 's/^:\(DOCKER[A-Z0-9_-]*\) .*/\1/p'); do
        "$ipt" -t "$table" -F "$chain" 2>/dev/null || true
      done
      for chain in $("${ipt}-save" -t "$table" 2>/dev/null | sed -n 's/^:\(DOCKER[A-Z0-9_-]*\) .*/\1/p'); do
        "$ipt" -t "$table" -X "$chain" 2>/dev/null || true
      done
    done
  done
  local dev
  for dev in $(ls /sys/class/net 2>/dev/null | grep -E '^(docker0|br-[0-9a-f]{12})$' || true); do
    ip link delete "$dev" 2>/dev/null && log "removed bridge ${dev}" || true
  done
  local policy
  policy="$(cat "${DOCKERD_STATE}/forward_policy" 2>/dev/null || true)"
  if [[ -n "$policy" ]] && command -v iptables >/dev/null 2>&1; then
    iptables -P FORWARD "$policy" 2>/dev/null || true
  fi
  rm -f "${DOCKERD_STATE}/forward_policy"
  if [[ -f "${DOCKERD_STATE}/ip_forward" ]]; then
    cat "${DOCKERD_STATE}/ip_forward" >/proc/sys/net/ipv4/ip_forward 2>/dev/null || true
    rm -f "${DOCKERD_STATE}/ip_forward"
  fi
}

docker_down() {
  [[ -d "$DOCKERD_STATE" ]] || return 0  # services-up.sh never started one here
  local pid=""
  [[ -f "$DOCKERD_PID" ]] && pid="$(cat "$DOCKERD_PID" 2>/dev/null || true)"
  if [[ -n "$pid" ]] && alive "$pid"; then
    if [[ "$PURGE_IMAGES" == 1 ]]; then
      log "removing the mq-drivers/* images"
      # shellcheck disable=SC2046
      timeout 120 /usr/bin/docker image rm -f $(timeout 30 /usr/bin/docker image ls -q --filter 'reference=mq-drivers/*' | sort -u) \
        >/dev/null 2>&1 || true
    fi
    log "stopping dockerd (pid ${pid}; its containers stop with it)"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 30))
    while alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
    if alive "$pid"; then
      log "dockerd (pid ${pid}) did not exit, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
    fi
  fi
  # the containerd dockerd runs as its child (normally stopped with it)
  local cpid
  cpid="$(cat /var/run/docker/containerd/containerd.pid 2>/dev/null || true)"
  if [[ -n "$cpid" ]] && alive "$cpid" && [[ "$(ps -o comm= -p "$cpid")" == containerd ]]; then
    log "stopping the containerd dockerd left (pid ${cpid})"
    kill -TERM "$cpid" 2>/dev/null || true
    local cdeadline=$((SECONDS + 10))
    while alive "$cpid" && ((SECONDS < cdeadline)); do sleep 0.2; done
    alive "$cpid" && kill -KILL "$cpid" 2>/dev/null || true
  fi
  rm -f "$DOCKERD_PID"
  if remove_docker_host_state; then log "dockerd stopped, host state removed"; fi
}

CONF="${MQ_CEPH_DIR}/ceph.conf"
RUN="${MQ_CEPH_DIR}/run"
if [[ "${MQ_SKIP_CEPH:-0}" != 1 ]]; then
  stop_daemon "${RUN}/client.rgw.mq.pid" radosgw "^radosgw -c ${CONF} "
  stop_daemon "${RUN}/osd.0.pid" ceph-osd "^ceph-osd -c ${CONF} "
  stop_daemon "${RUN}/mon.a.pid" ceph-mon "^ceph-mon -c ${CONF} "

  if [[ "${MQ_CEPH_KEEP:-0}" != 1 && -f "$MARKER" ]]; then
    case "$MQ_CEPH_DIR" in
      /|/tmp|/tmp/|"") ;;
      *) rm -rf "$MQ_CEPH_DIR" ;;
    esac
  fi
  log "Ceph test cluster stopped"
fi

[[ "${MQ_SKIP_CONTAINERS:-0}" == 1 ]] || docker_down

if [[ "$STOP_RABBIT" == 1 ]]; then
  if command -v rabbitmqctl >/dev/null 2>&1 && timeout 30 rabbitmqctl -q status >/dev/null 2>&1; then
    log "stopping RabbitMQ"
    timeout 60 rabbitmqctl -q stop >/dev/null 2>&1 || log "rabbitmqctl stop failed"
  fi
  log "RabbitMQ stopped"
fi
