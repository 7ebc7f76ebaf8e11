#!/bin/sh
# Container entry point of the local RabbitMQ test images (see Dockerfile).
#   MQ_ERLANG_COOKIE     shared Erlang cookie (cluster nodes need the same one)
#   MQ_RABBITMQ_CONFIG   extra rabbitmq.conf lines, appended before start
# Any arguments replace the server command (e.g. `sh` for debugging).
set -eu
if [ -n "${MQ_RABBITMQ_CONFIG:-}" ]; then
  printf '%s\n' "$MQ_RABBITMQ_CONFIG" >>/etc/rabbitmq/rabbitmq.conf
fi
if [ -n "${MQ_ERLANG_COOKIE:-}" ]; then
  printf '%s' "$MQ_ERLANG_COOKIE" >/var/lib/rabbitmq/.erlang.cookie
  chmod 400 /var/lib/rabbitmq/.erlang.cookie
fi
chown -R rabbitmq:rabbitmq /var/lib/rabbitmq /var/log/rabbitmq
if [ "$#" -gt 0 ]; then exec "$@"; fi
exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups /usr/lib/rabbitmq/bin/rabbitmq-server
