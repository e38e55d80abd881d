#!/usr/bin/env bash
# Starts the local services the integration tests use, when they are not
# running, and installs the packages the browser tests need. Idempotent; run
# as root (CI). Never restarts a service that is already up.
set -uo pipefail

up() { # host port
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}
wait_up() { # name host port
  for _ in $(seq 1 60); do up "$2" "$3" && return 0; sleep 1; done
  echo "services: $1 did not come up on $2:$3" >&2
  return 1
}

if ! up 127.0.0.1 5672 && command -v rabbitmq-server >/dev/null; then
  rabbitmq-server -detached
  wait_up rabbitmq 127.0.0.1 5672
fi
# The solace plugin's tests speak AMQP 1.0 to RabbitMQ (3.x: the
# rabbitmq_amqp1_0 plugin; 4.x speaks it natively). Enabled only when it is
# not; enabling a plugin does not restart the broker.
if up 127.0.0.1 5672 && command -v rabbitmq-plugins >/dev/null &&
  ! rabbitmq-plugins list -e -m 2>/dev/null | grep -qx rabbitmq_amqp1_0; then
  rabbitmq-plugins enable rabbitmq_amqp1_0 >/dev/null ||
    echo "services: could not enable rabbitmq_amqp1_0" >&2
fi
if ! up 127.0.0.1 1883 && command -v mosquitto >/dev/null; then
  mkdir -p /run/mosquitto && chown mosquitto /run/mosquitto 2>/dev/null
  mosquitto -d -c /etc/mosquitto/mosquitto.conf
  wait_up mosquitto 127.0.0.1 1883
fi
if ! up 127.0.0.1 4222 && command -v nats-server >/dev/null; then
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  wait_up nats 127.0.0.1 4222
fi
if ! up 127.0.0.1 6379 && command -v redis-server >/dev/null; then
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_up redis 127.0.0.1 6379
fi
if ! up 127.0.0.1 5432 && command -v pg_ctlcluster >/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
  wait_up postgresql 127.0.0.1 5432
fi

# Headless Chromium for the browser tests.
if ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi
exit 0
