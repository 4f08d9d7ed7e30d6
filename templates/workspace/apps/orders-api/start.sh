#!/bin/sh
# orders-api: reads its configuration, warms its price cache, then serves HTTP on 8080.
# The labs break it the ways real services break: a missing setting, too little memory.
set -eu

if [ -z "${ORDERS_DB_URL:-}" ]; then
  echo "orders-api: fatal: ORDERS_DB_URL is not set (it comes from the orders-api-config ConfigMap)" >&2
  exit 1
fi
echo "orders-api $(cat /VERSION) starting; database ${ORDERS_DB_URL}"

# The price cache is built in memory at start-up: CACHE_MB megabytes, filled once.
cache_mb=${CACHE_MB:-0}
if [ "$cache_mb" -gt 0 ]; then
  echo "orders-api: warming the price cache (${cache_mb} MB)"
  dd if=/dev/zero of=/dev/null bs="${cache_mb}M" count=1 2>/dev/null
fi

exec httpd -f -v -p 8080 -h /www
