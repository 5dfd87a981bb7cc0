# syntax=docker/dockerfile:1
# The controller image: the esbuild bundles and the function zip on a plain Node 24 runtime.
# The bundles are self-contained, so the runtime stage has no node_modules and no npm.

# The bundles are plain JavaScript: build them on the builder's own platform, whatever the target.
FROM --platform=$BUILDPLATFORM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY tsconfig.json ./
COPY scripts/build.ts scripts/ascii-only.ts scripts/
COPY src/ src/
RUN npm run build

FROM node:24-bookworm-slim AS runtime
# Only node itself is needed: drop npm, npx and corepack (and the CVEs their dependencies bring).
RUN rm -rf /usr/local/lib/node_modules /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
    /opt/yarn-* /usr/local/bin/yarn /usr/local/bin/yarnpkg
WORKDIR /app
# The controller finds the function zip in lambda/ next to its bundle (--lambda-zip default).
COPY --from=build /src/dist/controller.js /src/dist/controller.js.map /app/
COPY --from=build /src/dist/cli.js /src/dist/cli.js.map /app/
COPY --from=build /src/dist/lambda/secretsync-lambda.zip /app/lambda/secretsync-lambda.zip
# The CLI as `secretsync` (plan, iam-policy; doctor needs reads the controller's role lacks).
RUN ln -s /app/cli.js /usr/local/bin/secretsync
ENV NODE_ENV=production
# Sized for the controller's working set (make bench runs the bundle with this ENV): a 2 MB young
# generation (4 MB cost 5 MB more RSS and saved under 10 % of the CPU while provisioning), and two
# malloc arenas instead of glibc's eight per core (7 MB less RSS; the JavaScript runs on one thread). Raise
# --max-old-space-size for many thousands of SecretSyncs. Source maps cost about 50 MB of RSS, so they
# are off: the bundle keeps its names (stack traces name every function), and
# NODE_OPTIONS="... --enable-source-maps" brings source positions back from controller.js.map.
ENV NODE_OPTIONS="--max-old-space-size=96 --max-semi-space-size=2"
ENV MALLOC_ARENA_MAX=2
# Non-root, numeric so that runAsNonRoot can verify it; nothing is written at run time, so the root
# filesystem can be read-only.
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["node", "/app/controller.js"]
