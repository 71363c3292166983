# crmblob in a container: Debian 12 slim, built here, run as a user of its
# own with the data in one volume.
#
#   docker build -t crmblob .
#   docker run -d --name crmblob -p 8080:8080 -v crmblob-data:/data \
#       -e CRMBLOB_ADMIN_PASSWORD=change-me crmblob
#   docker kill -s HUP crmblob     # reload (TLS certificates, JWT keys, ...)
#
# Settings as CRMBLOB_<OPTION> variables (-e CRMBLOB_DURABLE=yes), a config
# file (-e CRMBLOB_CONFIG=/data/crmblob.conf), or options after the image
# name (docker run ... crmblob serve --durable). The first admin's password,
# without CRMBLOB_ADMIN_PASSWORD: /data/crmblob-admin-password.
# docker stop waits 10 s by default; a drain may take 30: docker stop -t 40.

# -- build: compilers and -dev packages (scripts/deps.sh build) ------------
FROM debian:12-slim AS build
WORKDIR /src
COPY scripts/deps.sh scripts/deps.sh
RUN bash scripts/deps.sh build && rm -rf /var/lib/apt/lists/*
COPY . .
RUN make -j"$(nproc)" all \
 && make -o all install PREFIX=/usr/local DESTDIR=/stage

# -- run: the libraries only (scripts/deps.sh runtime) ---------------------
FROM debian:12-slim
COPY scripts/deps.sh /tmp/deps.sh
RUN bash /tmp/deps.sh runtime && rm -rf /var/lib/apt/lists/* /tmp/deps.sh \
 && useradd --system --uid 10001 --user-group --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin crmblob \
 && install -d -o crmblob -g crmblob -m 0700 /data
# the server and, beside it, its image worker and PostgreSQL module
COPY --from=build /stage/usr/local/lib/crmblob/ /usr/local/lib/crmblob/
COPY --from=build /stage/usr/local/bin/crmblob /usr/local/bin/crmblob
COPY --from=build /stage/usr/local/share/man/man1/crmblob.1 /usr/local/share/man/man1/
USER crmblob
WORKDIR /data
# the probe below and EXPOSE assume port 8080
ENV CRMBLOB_LISTEN=0.0.0.0:8080 CRMBLOB_DB=/data/crmblob.db
VOLUME /data
EXPOSE 8080
# GET /health over the loopback with bash alone (no curl in the image):
# healthy when the answer's status line says 200.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /health HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && IFS= read -r -t 5 status <&3 && [[ $status == HTTP/1.?' 200 '* ]]"]
# SIGTERM (docker stop): requests in flight finish, up to 30 s
STOPSIGNAL SIGTERM
ENTRYPOINT ["crmblob"]
CMD ["serve"]
