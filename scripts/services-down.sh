#!/usr/bin/env bash
# Stop the Ceph test cluster started by scripts/services-up.sh (radosgw, then
# OSD, then monitor) and wipe its state dir. Idempotent.
# The cluster is throwaway (memstore = RAM), so daemons get SIGKILL by default
# (instant); MQ_CEPH_GRACEFUL=1 sends SIGTERM first (~2 s per daemon).
#
# RabbitMQ is normally pre-started on the machine and is left running, unless
# --with-rabbitmq (or MQ_STOP_RABBITMQ=1) is given.
#
# Env: MQ_CEPH_DIR (default /tmp/mq-ceph), MQ_CEPH_KEEP=1 keeps the state dir
# (logs) for inspection; services-up.sh recreates the cluster anyway.
set -euo pipefail

MQ_CEPH_DIR="${MQ_CEPH_DIR:-/tmp/mq-ceph}"
MARKER="${MQ_CEPH_DIR}/.mq-ceph-state"
STOP_RABBIT="${MQ_STOP_RABBITMQ:-0}"
for a in "$@"; do
  case "$a" in
    --with-rabbitmq) STOP_RABBIT=1 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
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

CONF="${MQ_CEPH_DIR}/ceph.conf"
RUN="${MQ_CEPH_DIR}/run"
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

if [[ "$STOP_RABBIT" == 1 ]]; then
  if command -v rabbitmqctl >/dev/null 2>&1 && timeout 30 rabbitmqctl -q status >/dev/null 2>&1; then
    log "stopping RabbitMQ"
    timeout 60 rabbitmqctl -q stop >/dev/null 2>&1 || log "rabbitmqctl stop failed"
  fi
  log "RabbitMQ stopped"
fi
