#!/bin/bash
# Container HEALTHCHECK: GET /health over bash's /dev/tcp, because the slim
# runtime image has no curl or wget and the binary has no healthcheck
# subcommand. Healthy = status 200 and a body saying "status":"ok".
#
# The port comes from IMAGE_PROXY_BIND_ADDRESS in the environment (default
# 0.0.0.0:8000); a bind address set only in /app/.env is not seen here.
# Docker's --timeout kills this if the server accepts but never answers.
set -u
addr=${IMAGE_PROXY_BIND_ADDRESS:-0.0.0.0:8000}
port=${addr##*:}

if ! { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
	echo "unhealthy: nothing listens on 127.0.0.1:$port"
	exit 1
fi
printf 'GET /health HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3
IFS= read -r status <&3 || status=""
case $status in
"HTTP/1."?" 200"*) ;;
*)
	echo "unhealthy: /health answered '${status%$'\r'}'"
	exit 1
	;;
esac
if ! grep -q '"status":"ok"' <&3; then
	echo 'unhealthy: /health body does not say "status":"ok"'
	exit 1
fi
