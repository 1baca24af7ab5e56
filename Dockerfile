# salmap: one image for the broker, the workers and the client
# (docker-compose.yml, docs/DEPLOY.md). Debian 12 with the Debian packages
# of the Makefile's DEB_PKGS list, installed by `make deps` as on a
# developer's machine, so that the image and the build share one list.
#   docker build -t salmap .
#   docker run --rm salmap salmap --help
FROM debian:bookworm-slim

# make itself is the one package installed here: it runs `make deps`
# (build-essential, the first package of the list, depends on it anyway).
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends make \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/salmap

# The Makefile alone first, so that the package layer is rebuilt only when
# the list changes. DEB_CMDS is emptied: npm only serves `make data`, and
# the data is mounted from the host rather than built into the image;
# TEST_DEB_PKGS too: the tests' packages (chromium, Slurm...) stay out.
COPY Makefile ./
RUN make deps DEB_CMDS= TEST_DEB_PKGS= && rm -rf /var/lib/apt/lists/*

COPY . .
RUN make -j"$(nproc)" \
 && install -m 755 build/bin/salmap build/bin/salmap-broker \
        build/bin/salmap-worker build/bin/salmap-gateway build/bin/salmap-mkdata \
        /usr/local/bin/

# The daemons run as a user of their own. The state, output and CURVE key
# folders are created here, owned by it, so that the named volumes mounted
# on them (docker-compose.yml) start writable. Its uid and gid are fixed, 10001,
# so that Kubernetes pods can name them (deploy/k8s: runAsUser, fsGroup).
RUN groupadd --system --gid 10001 salmap \
 && useradd --system --uid 10001 --gid salmap --home-dir /opt/salmap --shell /usr/sbin/nologin salmap \
 && mkdir -p /opt/salmap/state /out /keys \
 && chown salmap:salmap /opt/salmap/state /out /keys
USER 10001:10001

# 5555: clients, 5556: workers (configs/broker.yaml); 8080: salmap-gateway's
# HTTP API (docker-compose.yml's gateway service).
EXPOSE 5555 5556 8080
# No entrypoint: the command names the program (salmap-broker,
# salmap-worker, salmap-gateway or salmap), all on PATH in /usr/local/bin.
CMD ["salmap", "--help"]
