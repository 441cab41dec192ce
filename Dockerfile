# The `wren` image the topologies in containerlab/ and deploy/wren.yaml name (image:
# wren:latest): bgpd, bgpctl and wren-install (the DaemonSet's init container, which
# copies the plugins from /usr/lib/cni to the node) in /usr/local/bin, the wren and
# wren-ipam CNI plugins beside Debian's CNI plugins in /usr/lib/cni, iproute2 for the
# nodes' exec: commands, and wren-pod to add pods.
#
#   docker build -t wren:latest .
#   containerlab deploy -t containerlab/tor.clab.yml
#
# A node that binds /etc/wren/bgpd.toml runs bgpd with it; any other (the switches of the
# mesh and rr topologies) only runs its exec: commands.

# --- build ------------------------------------------------------------------------------
FROM rust:1-bookworm AS build
# protoc for etcd-client's generated code; the C compiler for the bundled SQLite is in
# the rust image already.
RUN apt-get update \
 && apt-get install -y --no-install-recommends protobuf-compiler \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The commit wren_build_info reports: docker build --build-arg WREN_COMMIT=$(git rev-parse --short HEAD) .
ARG WREN_COMMIT=unknown
ENV WREN_COMMIT=$WREN_COMMIT
# bgpd on its own: its link puts the functions of bgpd/hot-functions.txt first, names
# that hold for `cargo build -p bgpd` alone (scripts/hot-functions).
RUN cargo build --release --locked -p bgpd --bins \
 && cargo build --release --locked -p bgpctl -p ipam -p cni -p cluster --bins \
 && install -D -m 0755 target/release/bgpd target/release/bgpctl target/release/wren-install \
      -t /out/usr/local/bin \
 && install -D -m 0755 target/release/wren target/release/wren-ipam -t /out/usr/lib/cni

# --- runtime ----------------------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      iproute2 containernetworking-plugins iputils-ping procps jq ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /etc/wren /run/wren /var/lib/wren /etc/cni/net.d
COPY --from=build /out/ /
# Pods under containerlab (where the wren.io/pods label does nothing): wren-pod add NAME.
COPY containerlab/wren-pod /usr/local/bin/wren-pod
ENV WREN_CONTROL_SOCKET=/run/wren/bgpd.sock
CMD ["/bin/sh", "-c", "if [ -f /etc/wren/bgpd.toml ]; then exec bgpd --config /etc/wren/bgpd.toml; else exec sleep infinity; fi"]
