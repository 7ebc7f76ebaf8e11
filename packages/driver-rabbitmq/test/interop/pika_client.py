"""A non-JS client of the documented topology (TOPOLOGY.md), using pika.

Commands (one JSON object per output line):
  publish URL EXCHANGE ROUTING_KEY MESSAGE_ID BODY_JSON [KEY=VALUE ...]
      publishes one persistent JSON message with publisher confirms; prints {"published": id}
  consume URL EXCHANGE BINDING_KEY COUNT TIMEOUT_SECONDS
      declares a server-named exclusive queue bound to EXCHANGE, prints {"ready": true}, then one
      line per message: {"body", "routing_key", "content_type", "delivery_mode", "message_id",
      "timestamp", "headers"}
  work URL QUEUE COUNT TIMEOUT_SECONDS
      competes as a worker on a kind's queue: reads COUNT messages, acks them, prints them
"""
import json
import sys
import time

import pika


def connect(url):
    return pika.BlockingConnection(pika.URLParameters(url))


def plain(value):
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def describe(method, properties, body):
    return {
        "body": json.loads(body.decode("utf-8")),
        "routing_key": method.routing_key,
        "content_type": properties.content_type,
        "delivery_mode": properties.delivery_mode,
        "message_id": properties.message_id,
        "timestamp": properties.timestamp,
        "headers": plain(properties.headers or {}),
    }


def publish(url, exchange, routing_key, message_id, body, *pairs):
    headers = dict(pair.split("=", 1) for pair in pairs)
    connection = connect(url)
    channel = connection.channel()
    channel.confirm_delivery()
    channel.basic_publish(
        exchange=exchange,
        routing_key=routing_key,
        body=body.encode("utf-8"),
        properties=pika.BasicProperties(
            content_type="application/json",
            delivery_mode=2,
            message_id=message_id,
            timestamp=int(time.time()),
            headers=headers,
        ),
        mandatory=False,
    )
    print(json.dumps({"published": message_id}), flush=True)
    connection.close()


def read(channel, queue, count, timeout):
    deadline = time.time() + float(timeout)
    seen = 0
    while seen < int(count) and time.time() < deadline:
        method, properties, body = channel.basic_get(queue=queue, auto_ack=False)
        if method is None:
            time.sleep(0.02)
            continue
        print(json.dumps(describe(method, properties, body)), flush=True)
        channel.basic_ack(method.delivery_tag)
        seen += 1


def consume(url, exchange, binding_key, count, timeout):
    connection = connect(url)
    channel = connection.channel()
    queue = channel.queue_declare(queue="", exclusive=True).method.queue
    channel.queue_bind(queue=queue, exchange=exchange, routing_key=binding_key)
    print(json.dumps({"ready": True}), flush=True)
    read(channel, queue, count, timeout)
    connection.close()


def work(url, queue, count, timeout):
    connection = connect(url)
    channel = connection.channel()
    read(channel, queue, count, timeout)
    connection.close()


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    {"publish": publish, "consume": consume, "work": work}[command](*args)
