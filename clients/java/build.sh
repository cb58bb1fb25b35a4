#!/usr/bin/env bash
# Builds the Java client: buf generates the stubs (clients/java/buf.gen.yaml) under build/gen,
# javac compiles them with the wrapper and the live test against Debian's jars into build/classes.
# Prints the classpath to run it with (build/classes and the jars).
#   clients/java/build.sh            # needs `make system-deps` (tools/system-packages.d/clients.txt)
#   java -cp "$(clients/java/build.sh)" dev.tokenwire.client.StreamCommand HOST:PORT "Hello" 16
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
buf="${BUF:-$root/.venv/bin/buf}"
# Debian's grpc-java 1.41 with what it needs at run time: protobuf-java 3.21, netty 4.1, guava,
# perfmark, gson (also the bench worker's JSON), javax.annotation for @Generated.
jars=(protobuf protobuf-util grpc-api grpc-context grpc-core grpc-stub grpc-protobuf
      grpc-protobuf-lite grpc-netty netty-buffer netty-codec netty-codec-http netty-codec-http2
      netty-codec-socks netty-common netty-handler netty-handler-proxy netty-resolver
      netty-transport guava jsr305 perfmark-api gson geronimo-annotation-1.3-spec)
classpath="$here/build/classes"
for jar in "${jars[@]}"; do
  [[ -f "/usr/share/java/$jar.jar" ]] || { echo "missing /usr/share/java/$jar.jar: run make system-deps" >&2; exit 1; }
  classpath+=":/usr/share/java/$jar.jar"
done
rm -rf "$here/build"
mkdir -p "$here/build/classes"
(cd "$root" && "$buf" generate --template clients/java/buf.gen.yaml -o clients/java/build/gen)
find "$here/build/gen" "$here/src" -name '*.java' > "$here/build/sources.txt"
javac -nowarn -encoding UTF-8 -Xlint:-options -d "$here/build/classes" -cp "$classpath" \
  @"$here/build/sources.txt" >&2
echo "$classpath"
