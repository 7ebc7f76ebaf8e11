#!/usr/bin/env bash
# Bring up the real services used by the integration tests, on 127.0.0.1:
#   - RabbitMQ            amqp://guest:guest@127.0.0.1:5672
#   - Ceph RADOS Gateway  http://127.0.0.1:7480 (S3, enforces If-None-Match / If-Match)
#   - a Docker engine     (Debian's docker.io; dockerd started here when no engine
#                         answers) with local test images built from Debian
#                         packages, since no image registry is reachable:
#                           mq-drivers/debian:12     debootstrap bookworm (minbase)
#                           mq-drivers/debian:13     debootstrap trixie (minbase)
#                           mq-drivers/rabbitmq:3.10 rabbitmq-server on debian:12
#                           mq-drivers/rabbitmq:4.0  rabbitmq-server on debian:13
#                         (scripts/containers/; each built once, cached by tag and
#                         by a hash of its build files: a warm run costs seconds)
#
# Debian 12, run as root. No docker, no systemd. Idempotent: if a service
# already answers it is left alone. Needs only apt (Debian mirror) and python3
# (stdlib); it does NOT depend on npm packages (runs before `pnpm install`).
#
# Ceph runs as a throwaway one-monitor / one-OSD (memstore, RAM) cluster whose
# whole state lives in $MQ_CEPH_DIR (default /tmp/mq-ceph) with its own
# ceph.conf; /etc/ceph is not used. When the S3 endpoint does not answer, the
# cluster is recreated from scratch (~2-5 s once the packages are installed).
#
# Env knobs:
#   MQ_CEPH_DIR          state dir (default /tmp/mq-ceph)
#   MQ_SKIP_RABBITMQ=1   do not touch RabbitMQ
#   MQ_SKIP_CEPH=1       do not touch Ceph
#   MQ_SKIP_CONTAINERS=1 no Docker engine, no images
#   MQ_DEBIAN_MIRROR     mirror for debootstrap (default: the one apt uses)
#   MQ_DOCKERD_STATE     dockerd pid/log/state dir (default /var/lib/mq-dockerd)
#
# The dockerd started here is stopped (and what it left on the host removed) by
# scripts/services-down.sh; an engine that already answered is left alone.
#
# On success the last lines printed are the MQ_TEST_* variables (KEY=VALUE),
# so `eval "$(scripts/services-up.sh | grep '^MQ_TEST_')"` works.
set -euo pipefail

MQ_CEPH_DIR="${MQ_CEPH_DIR:-/tmp/mq-ceph}"
RGW_HOST=127.0.0.1
RGW_PORT=7480
RGW_URL="http://${RGW_HOST}:${RGW_PORT}"
RGW_NAME="client.rgw.mq"
S3_UID="mqtest"
S3_ACCESS_KEY="mqtestaccesskey"
S3_SECRET_KEY="mqtestsecretkey0123456789"
S3_REGION="us-east-1"
S3_BUCKET="mq-test"
RABBIT_URL="amqp://guest:guest@127.0.0.1:5672"

CONF="${MQ_CEPH_DIR}/ceph.conf"
MARKER="${MQ_CEPH_DIR}/.mq-ceph-state"
export DEBIAN_FRONTEND=noninteractive

log() { printf '[services-up] %s\n' "$*" >&2; }
die() { printf '[services-up] ERROR: %s\n' "$*" >&2; exit 1; }

# tail of log files, for diagnostics on failure
show_logs() {
  local f
  for f in "$@"; do
    if [[ -f "$f" ]]; then
      printf -- '----- tail -n 40 %s -----\n' "$f" >&2
      tail -n 40 "$f" >&2 || true
    fi
  done
}

# alive <pid>: running and not a zombie (PID 1 here may reap late)
alive() {
  local st
  st="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
  [[ -n "$st" && "$st" != Z* ]]
}

tcp_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

# wait_for <seconds> <description> <command...>: poll every 0.2 s until the
# command succeeds or the deadline passes (returns 1 then).
wait_for() {
  local secs="$1" what="$2"; shift 2
  local deadline=$((SECONDS + secs))
  while ((SECONDS < deadline)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  log "timed out after ${secs}s waiting for: ${what}"
  return 1
}

apt_install() {
  log "apt-get install $*"
  if ! timeout 600 apt-get install -y --no-install-recommends "$@" >/tmp/mq-apt.log 2>&1; then
    log "install failed, running apt-get update and retrying"
    timeout 300 apt-get update >>/tmp/mq-apt.log 2>&1 || true
    timeout 600 apt-get install -y --no-install-recommends "$@" >>/tmp/mq-apt.log 2>&1 \
      || { show_logs /tmp/mq-apt.log; die "apt-get install $* failed"; }
  fi
}

# ---------------------------------------------------------------- RabbitMQ --
rabbit_ok() {
  tcp_open 127.0.0.1 5672 && timeout 30 rabbitmqctl -q status >/dev/null 2>&1
}

rabbit_up() {
  if rabbit_ok; then
    log "RabbitMQ already running on 127.0.0.1:5672"
  else
    if ! command -v rabbitmq-server >/dev/null 2>&1; then
      log "installing rabbitmq-server"
      timeout 300 apt-get update >/tmp/mq-apt.log 2>&1 || true
      timeout 600 apt-get install -y rabbitmq-server >>/tmp/mq-apt.log 2>&1 \
        || { show_logs /tmp/mq-apt.log; die "apt-get install rabbitmq-server failed"; }
    fi
    if ! tcp_open 127.0.0.1 5672; then
      log "starting rabbitmq-server -detached"
      # the Debian wrapper switches to the rabbitmq user by itself
      rabbitmq-server -detached </dev/null >/dev/null 2>&1 || true
    fi
    log "waiting for RabbitMQ (rabbitmqctl await_startup)"
    # await_startup fails at once while the Erlang node is not registered yet,
    # so retry it (each try bounded) until the overall deadline.
    if ! wait_for 120 "rabbitmqctl await_startup" \
         timeout 30 rabbitmqctl -q await_startup --timeout 25 \
       || ! wait_for 30 "RabbitMQ on :5672" tcp_open 127.0.0.1 5672; then
      show_logs /var/log/rabbitmq/startup_log /var/log/rabbitmq/startup_err \
        "$(ls -t /var/log/rabbitmq/rabbit*.log 2>/dev/null | head -n1)"
      die "RabbitMQ did not start"
    fi
    log "RabbitMQ started"
  fi
  # make sure guest/guest works (fresh installs have it; be defensive)
  if ! timeout 30 rabbitmqctl -q authenticate_user guest guest >/dev/null 2>&1; then
    log "guest/guest does not authenticate, (re)creating user guest"
    timeout 30 rabbitmqctl -q add_user guest guest >/dev/null 2>&1 \
      || timeout 30 rabbitmqctl -q change_password guest guest >/dev/null 2>&1 || true
    timeout 30 rabbitmqctl -q set_user_tags guest administrator >/dev/null 2>&1 || true
    timeout 30 rabbitmqctl -q set_permissions -p / guest '.*' '.*' '.*' >/dev/null 2>&1 || true
    timeout 30 rabbitmqctl -q authenticate_user guest guest >/dev/null 2>&1 \
      || die "RabbitMQ user guest/guest cannot authenticate"
  fi
}

# -------------------------------------------------------------------- Ceph --
# anonymous GET / must return the S3 ListAllMyBuckets XML
rgw_ok() {
  curl -fsS --max-time 3 "${RGW_URL}/" 2>/dev/null | grep -q 'ListAllMyBucketsResult'
}

cephc() { timeout 20 ceph -c "$CONF" --connect-timeout 10 "$@"; }

stop_pidfile() { # <pidfile> <name> <grace seconds>
  local pf="$1" name="$2" grace="$3" pid
  [[ -f "$pf" ]] || return 0
  pid="$(cat "$pf" 2>/dev/null || true)"
  if [[ -n "$pid" ]] && alive "$pid"; then
    log "stopping leftover ${name} (pid ${pid})"
    kill -KILL "$pid" 2>/dev/null || true  # throwaway state, wiped below
    local deadline=$((SECONDS + grace))
    while alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
  fi
  rm -f "$pf"
}

write_conf() {
  local fsid="$1"
  cat >"$CONF" <<EOF
# Generated by scripts/services-up.sh - throwaway single-node test cluster.
[global]
fsid = ${fsid}
mon initial members = a
mon host = [v2:127.0.0.1:3300,v1:127.0.0.1:3301]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false

auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
ms mon client mode = crc

run dir = ${MQ_CEPH_DIR}/run
pid file = ${MQ_CEPH_DIR}/run/\$name.pid
admin socket = ${MQ_CEPH_DIR}/run/\$cluster-\$name.asok
log file = ${MQ_CEPH_DIR}/log/\$name.log
keyring = ${MQ_CEPH_DIR}/keyring
log to stderr = false
err to stderr = true
log to syslog = false
crash dir = ${MQ_CEPH_DIR}/crash

osd pool default size = 1
osd pool default min size = 1
osd crush chooseleaf type = 0
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000

[mon]
mon data = ${MQ_CEPH_DIR}/mon/\$cluster-\$id
paxos propose interval = 0.05
mon data avail warn = 1
mon data avail crit = 0

[osd]
osd data = ${MQ_CEPH_DIR}/osd/\$cluster-\$id
osd objectstore = memstore
memstore device bytes = 1073741824
osd crush update on start = true

[${RGW_NAME}]
auth client required = none
ms mon client mode = crc
rgw frontends = beast endpoint=${RGW_HOST}:${RGW_PORT} tcp_nodelay=1
rgw data = ${MQ_CEPH_DIR}/rgw
rgw thread pool size = 128
EOF
}

ceph_fail() {
  show_logs "${MQ_CEPH_DIR}/log/mon.a.log" "${MQ_CEPH_DIR}/log/osd.0.log" \
    "${MQ_CEPH_DIR}/log/${RGW_NAME}.log" "${MQ_CEPH_DIR}/log/radosgw.stderr" \
    "${MQ_CEPH_DIR}/log/setup.log"
  die "$1"
}

# wait until GET / serves; fail fast if the radosgw process went away
wait_rgw() {
  local deadline=$((SECONDS + $1)) grace=$((SECONDS + 5)) pid
  while ((SECONDS < deadline)); do
    rgw_ok && return 0
    if ((SECONDS >= grace)); then
      pid="$(cat "${MQ_CEPH_DIR}/run/${RGW_NAME}.pid" 2>/dev/null || true)"
      if [[ -z "$pid" ]] || ! alive "$pid"; then
        log "radosgw is not running"
        return 1
      fi
    fi
    sleep 0.2
  done
  log "timed out after $1s waiting for S3 GET / on ${RGW_URL}"
  return 1
}

osd_up() { cephc osd stat 2>/dev/null | grep -Eq '[1-9][0-9]* up'; }

ceph_up() {
  if rgw_ok; then
    log "S3 endpoint already answers on ${RGW_URL}"
    return 0
  fi

  local b
  for b in ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool; do
    if ! command -v "$b" >/dev/null 2>&1; then
      apt_install ceph-mon ceph-osd radosgw ceph-common
      break
    fi
  done
  command -v uuidgen >/dev/null 2>&1 || apt_install uuid-runtime

  if tcp_open "$RGW_HOST" "$RGW_PORT"; then
    die "something listens on ${RGW_HOST}:${RGW_PORT} but is not an S3 endpoint (stop it first)"
  fi

  # ---- clean slate: stop leftovers of a previous run, wipe our state dir
  case "$MQ_CEPH_DIR" in
    /|/tmp|/tmp/|/root|/home|/var|/etc|/usr|"") die "refusing to use MQ_CEPH_DIR=${MQ_CEPH_DIR}" ;;
  esac
  if [[ -d "$MQ_CEPH_DIR" ]]; then
    stop_pidfile "${MQ_CEPH_DIR}/run/${RGW_NAME}.pid" radosgw 10
    stop_pidfile "${MQ_CEPH_DIR}/run/osd.0.pid" ceph-osd 10
    stop_pidfile "${MQ_CEPH_DIR}/run/mon.a.pid" ceph-mon 10
    if [[ -f "$MARKER" || -z "$(ls -A "$MQ_CEPH_DIR")" ]]; then
      rm -rf "$MQ_CEPH_DIR"
    else
      die "${MQ_CEPH_DIR} exists but was not created by this script; remove it or set MQ_CEPH_DIR"
    fi
  fi
  local p
  for p in 3300 3301; do
    tcp_open 127.0.0.1 "$p" && die "port ${p} already in use (another ceph-mon?); run scripts/services-down.sh"
  done

  log "creating Ceph test cluster in ${MQ_CEPH_DIR}"
  mkdir -p "${MQ_CEPH_DIR}"/{run,log,mon,osd/ceph-0,rgw,crash}
  touch "$MARKER"
  local fsid osd_uuid osd_id setup_log="${MQ_CEPH_DIR}/log/setup.log"
  fsid="$(uuidgen)"
  osd_uuid="$(uuidgen)"
  write_conf "$fsid"
  export CEPH_CONF="$CONF"
  : >"${MQ_CEPH_DIR}/keyring"

  # ---- monitor
  monmaptool --create --addv a '[v2:127.0.0.1:3300,v1:127.0.0.1:3301]' \
    --fsid "$fsid" "${MQ_CEPH_DIR}/monmap" >>"$setup_log" 2>&1 || ceph_fail "monmaptool failed"
  timeout 60 ceph-mon -c "$CONF" --mkfs -i a --monmap "${MQ_CEPH_DIR}/monmap" \
    >>"$setup_log" 2>&1 || ceph_fail "ceph-mon --mkfs failed"
  timeout 30 ceph-mon -c "$CONF" -i a </dev/null >>"$setup_log" 2>&1 \
    || ceph_fail "ceph-mon failed to start"
  wait_for 30 "ceph-mon quorum" cephc mon stat || ceph_fail "ceph-mon did not become ready"

  # ---- OSD (memstore)
  osd_id="$(cephc osd new "$osd_uuid" 2>>"$setup_log")" || ceph_fail "ceph osd new failed"
  [[ "$osd_id" == "0" ]] || ceph_fail "unexpected OSD id '${osd_id}'"
  timeout 60 ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$osd_uuid" \
    >>"$setup_log" 2>&1 || ceph_fail "ceph-osd --mkfs failed"
  timeout 30 ceph-osd -c "$CONF" -i 0 </dev/null >>"$setup_log" 2>&1 \
    || ceph_fail "ceph-osd failed to start"
  wait_for 30 "1 OSD up" osd_up || ceph_fail "OSD did not come up"

  # ---- RADOS Gateway
  timeout 30 radosgw -c "$CONF" -n "$RGW_NAME" </dev/null \
    >>"${MQ_CEPH_DIR}/log/radosgw.stderr" 2>&1 || ceph_fail "radosgw failed to start"
  wait_rgw 90 || ceph_fail "radosgw did not serve ${RGW_URL}"

  # ---- S3 user with fixed keys (idempotent)
  if ! timeout 60 radosgw-admin -c "$CONF" user info --uid="$S3_UID" >/dev/null 2>&1; then
    local out
    if ! out="$(timeout 60 radosgw-admin -c "$CONF" user create --uid="$S3_UID" \
        --display-name="MQ test user" --access-key="$S3_ACCESS_KEY" \
        --secret-key="$S3_SECRET_KEY" 2>&1)"; then
      if ! grep -qi 'exist' <<<"$out"; then
        printf '%s\n' "$out" >&2
        ceph_fail "radosgw-admin user create failed"
      fi
    fi
  fi
  log "Ceph RGW ready on ${RGW_URL}"
}

# ------------------------------------------------------------- self-check --
# Anonymous GET / plus a SigV4-signed ListBuckets with the test keys (python
# stdlib only). Checks the endpoint and the credentials, not conditional
# writes (see scripts/check-s3-conditional.mjs for that).
s3_self_check() {
  rgw_ok || die "self-check: anonymous GET ${RGW_URL}/ did not return ListAllMyBucketsResult"
  local i
  for i in 1 2 3 4 5 6 7 8 9 10; do
    if S3_ENDPOINT="$RGW_URL" AK="$S3_ACCESS_KEY" SK="$S3_SECRET_KEY" REGION="$S3_REGION" \
      timeout 15 python3 - <<'PY' 2>/tmp/mq-s3-selfcheck.err
import datetime, hashlib, hmac, os, sys, urllib.request, urllib.error
ep = os.environ["S3_ENDPOINT"].rstrip("/"); ak = os.environ["AK"]; sk = os.environ["SK"]; region = os.environ["REGION"]
host = ep.split("://", 1)[1]
now = datetime.datetime.now(datetime.timezone.utc)
amzdate = now.strftime("%Y%m%dT%H%M%SZ"); date = now.strftime("%Y%m%d")
payload = hashlib.sha256(b"").hexdigest()
canon = "\n".join(["GET", "/", "", "host:" + host, "x-amz-content-sha256:" + payload,
                   "x-amz-date:" + amzdate, "", "host;x-amz-content-sha256;x-amz-date", payload])
scope = f"{date}/{region}/s3/aws4_request"
sts = "\n".join(["AWS4-HMAC-SHA256", amzdate, scope, hashlib.sha256(canon.encode()).hexdigest()])
k = ("AWS4" + sk).encode()
for part in (date, region, "s3", "aws4_request"):
    k = hmac.new(k, part.encode(), hashlib.sha256).digest()
sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
req = urllib.request.Request(ep + "/", headers={
    "x-amz-date": amzdate, "x-amz-content-sha256": payload,
    "Authorization": f"AWS4-HMAC-SHA256 Credential={ak}/{scope}, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={sig}"})
try:
    body = urllib.request.urlopen(req, timeout=10).read().decode()
except urllib.error.HTTPError as e:
    sys.exit(f"signed ListBuckets failed: HTTP {e.code} {e.read()[:300]!r}")
if "<ID>mqtest</ID>" not in body:
    sys.exit("signed ListBuckets did not authenticate as mqtest: " + body[:300])
PY
    then
      log "self-check OK: anonymous GET / and SigV4 ListBuckets as ${S3_UID}"
      return 0
    fi
    sleep 0.5
  done
  cat /tmp/mq-s3-selfcheck.err >&2 || true
  die "self-check: signed S3 request with the test keys failed"
}

# -------------------------------------------------------------- containers --
DOCKERD_STATE="${MQ_DOCKERD_STATE:-/var/lib/mq-dockerd}"
DOCKERD_PID="${DOCKERD_STATE}/dockerd.pid"
DOCKERD_LOG="${DOCKERD_STATE}/dockerd.log"
CONTAINERS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/containers"
# Debian's CLI first: it matches the engine (another CLI may be first on PATH).
docker_bin() { if [[ -x /usr/bin/docker ]]; then echo /usr/bin/docker; else command -v docker; fi; }
dk() { DOCKER_BUILDKIT=0 timeout "${DK_TIMEOUT:-60}" "$(docker_bin)" "$@"; }
engine_ok() { [[ -n "$(docker_bin)" ]] && DK_TIMEOUT=10 dk version --format '{{.Server.Version}}' >/dev/null 2>&1; }

debian_mirror() {
  if [[ -n "${MQ_DEBIAN_MIRROR:-}" ]]; then echo "$MQ_DEBIAN_MIRROR"; return; fi
  local m
  m="$(grep -hE '^URIs:.*/debian/?$' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1 | awk '{print $2}')"
  [[ -n "$m" ]] || m="$(grep -hE '^deb .*/debian/? ' /etc/apt/sources.list 2>/dev/null | head -n1 | awk '{print $2}')"
  echo "${m:-http://deb.debian.org/debian}"
}

engine_up() {
  local need=()
  [[ -x /usr/sbin/dockerd ]] || need+=(docker.io)
  command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
  if ((${#need[@]})); then
    # no init system here: keep the package scripts from starting a daemon of their own
    local policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && policy=1
    fi
    apt_install "${need[@]}"
    ((policy)) && rm -f /usr/sbin/policy-rc.d
  fi
  if engine_ok; then
    log "Docker engine already answers ($(DK_TIMEOUT=10 dk version --format '{{.Server.Version}}'))"
    return 0
  fi
  mkdir -p "$DOCKERD_STATE"
  local pid=""
  [[ -f "$DOCKERD_PID" ]] && pid="$(cat "$DOCKERD_PID" 2>/dev/null || true)"
  if [[ -n "$pid" ]] && alive "$pid"; then
    log "dockerd (pid ${pid}) runs but does not answer yet"
  else
    # what services-down.sh restores: the host's ip_forward before dockerd set it
    [[ -f "${DOCKERD_STATE}/ip_forward" ]] || cat /proc/sys/net/ipv4/ip_forward >"${DOCKERD_STATE}/ip_forward"
    # and the policy of iptables' FORWARD chain (dockerd sets it to DROP)
    if [[ ! -f "${DOCKERD_STATE}/forward_policy" ]]; then
      iptables -S FORWARD 2>/dev/null | sed -n 's/^-P FORWARD //p' >"${DOCKERD_STATE}/forward_policy" || true
    fi
    log "starting dockerd (log ${DOCKERD_LOG})"
    setsid /usr/sbin/dockerd --pidfile "${DOCKERD_STATE}/docker.pid" </dev/null >>"$DOCKERD_LOG" 2>&1 &
    echo $! >"$DOCKERD_PID"
  fi
  local deadline=$((SECONDS + 60))
  until engine_ok; do
    if ! alive "$(cat "$DOCKERD_PID")" || ((SECONDS >= deadline)); then
      show_logs "$DOCKERD_LOG"
      die "dockerd did not answer"
    fi
    sleep 0.2
  done
  log "dockerd up (pid $(cat "$DOCKERD_PID"))"
}

# image_current <tag> <hash>: the tag exists and was built from these inputs
image_current() {
  [[ "$(DK_TIMEOUT=20 dk image inspect --format '{{ index .Config.Labels "mq-drivers.inputs" }}' "$1" 2>/dev/null)" == "$2" ]]
}

# base_image <tag> <suite>: debootstrap --variant=minbase, then docker import
base_image() {
  local tag="$1" suite="$2" hash
  hash="$(printf 'minbase %s %s v1' "$suite" "$(debian_mirror)" | sha256sum | cut -c1-16)"
  if image_current "$tag" "$hash"; then log "image ${tag} cached"; return 0; fi
  local root t0=$SECONDS
  root="$(mktemp -d /tmp/mq-rootfs.XXXXXX)"
  log "building ${tag}: debootstrap --variant=minbase ${suite} ($(debian_mirror))"
  if ! timeout 900 debootstrap --variant=minbase "$suite" "$root" "$(debian_mirror)" >/tmp/mq-debootstrap.log 2>&1; then
    rm -rf "$root"; show_logs /tmp/mq-debootstrap.log; die "debootstrap ${suite} failed"
  fi
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
  # --numeric-owner: ids inside the image are the rootfs's, not looked up on this host
  tar --numeric-owner -C "$root" -c . \
    | DK_TIMEOUT=300 dk import --change "LABEL mq-drivers.inputs=${hash}" --change 'CMD ["bash"]' - "$tag" >/dev/null \
    || { rm -rf "$root"; die "docker import ${tag} failed"; }
  rm -rf "$root"
  log "built ${tag} in $((SECONDS - t0)) s"
}

# built_image <tag> <dir> <base tag>: docker build of scripts/containers/<dir> FROM the base
built_image() {
  local tag="$1" dir="${CONTAINERS_DIR}/$2" base="$3" hash t0=$SECONDS
  hash="$( (cd "$dir" && cat $(ls | sort); DK_TIMEOUT=20 dk image inspect --format '{{.Id}}' "$base") | sha256sum | cut -c1-16)"
  if image_current "$tag" "$hash"; then log "image ${tag} cached"; return 0; fi
  log "building ${tag} FROM ${base}"
  if ! DK_TIMEOUT=900 dk build --pull=false --network bridge --build-arg "BASE=${base}" \
       --label "mq-drivers.inputs=${hash}" -t "$tag" "$dir" >/tmp/mq-docker-build.log 2>&1; then
    show_logs /tmp/mq-docker-build.log; die "docker build ${tag} failed"
  fi
  log "built ${tag} in $((SECONDS - t0)) s"
}

containers_up() {
  local t0=$SECONDS
  engine_up
  base_image mq-drivers/debian:12 bookworm
  built_image mq-drivers/rabbitmq:3.10 rabbitmq mq-drivers/debian:12
  base_image mq-drivers/debian:13 trixie
  built_image mq-drivers/rabbitmq:4.0 rabbitmq mq-drivers/debian:13
  # the packaged versions, for the log (and a check that the images run)
  local v
  for v in 3.10 4.0; do
    log "mq-drivers/rabbitmq:${v}: rabbitmq-server $(DK_TIMEOUT=60 dk run --rm --network none --entrypoint dpkg-query \
      "mq-drivers/rabbitmq:${v}" -W -f '${Version}' rabbitmq-server 2>/dev/null || echo '?')"
  done
  log "containers ready ($((SECONDS - t0)) s)"
}

main() {
  local t0=$SECONDS
  [[ "$(id -u)" == 0 ]] || die "must run as root"
  command -v curl >/dev/null 2>&1 || apt_install curl ca-certificates
  # A non-JS AMQP client for the RabbitMQ interop test (Debian's python3, not a pyenv one).
  /usr/bin/python3 -c 'import pika' >/dev/null 2>&1 || apt_install python3-pika
  [[ "${MQ_SKIP_RABBITMQ:-0}" == 1 ]] || rabbit_up
  if [[ "${MQ_SKIP_CEPH:-0}" != 1 ]]; then
    ceph_up
    s3_self_check
  fi
  [[ "${MQ_SKIP_CONTAINERS:-0}" == 1 ]] || containers_up
  log "all services up ($((SECONDS - t0)) s)"
  [[ "${MQ_SKIP_RABBITMQ:-0}" == 1 ]] || echo "MQ_TEST_RABBITMQ_URL=${RABBIT_URL}"
  if [[ "${MQ_SKIP_CEPH:-0}" != 1 ]]; then
    echo "MQ_TEST_S3_ENDPOINT=${RGW_URL}"
    echo "MQ_TEST_S3_ACCESS_KEY_ID=${S3_ACCESS_KEY}"
    echo "MQ_TEST_S3_SECRET_ACCESS_KEY=${S3_SECRET_KEY}"
    echo "MQ_TEST_S3_REGION=${S3_REGION}"
    echo "MQ_TEST_S3_BUCKET=${S3_BUCKET}"
    echo "MQ_TEST_S3_FORCE_PATH_STYLE=true"
  fi
  if [[ "${MQ_SKIP_CONTAINERS:-0}" != 1 ]]; then
    echo "MQ_TEST_RABBITMQ_IMAGE=mq-drivers/rabbitmq:4.0"
    echo "TESTCONTAINERS_RYUK_DISABLED=true"
    echo "TESTCONTAINERS_HOST_OVERRIDE=localhost"
  fi
}

main "$@"
